import { closeSync, fsyncSync, mkdirSync, openSync, renameSync, accessSync, constants as fsConstants } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { blockPartition, decodeOti, type Oti } from '../fec/index.js';
import { syncDecoder, type DecodeExecutor, type DecodeJob, type DecodeResult, type InPlaceJob, type InPlaceResult } from './decoding.js';
import { decodePacket, objectIdHex, HASH_LENGTH, type DescriptionBody, type FountainPacket } from '../wire/fountain.js';
import { IotupdError, StorageError } from '../errors.js';
import { bytesEqual, createHasher, deriveObjectId, type Hasher } from './object.js';
import { RecordKind, Spool } from './spool.js';

export interface ReceiverStats {
  /** Datagrams given to push(). */
  datagrams: number;
  /** Symbol packets of the selected object. */
  received: number;
  /** Symbols that went into completed blocks (source symbols written + symbols fed to a successful decode). */
  used: number;
  /** Symbols already held (same SBN and ESI). */
  duplicate: number;
  /** Symbols for blocks already complete. */
  late: number;
  /** Packets of other objects. */
  foreign: number;
  /** Datagrams that do not decode, or describe an impossible object, or carry an impossible symbol. */
  malformed: number;
  /** Descriptions with the selected object's id but a different OTI, size or hash. */
  conflicts: number;
  /** Packets rejected by the `accept` hook (e.g. authentication failures). */
  rejected: number;
  /** Packet types this layer does not interpret (e.g. MANIFEST for the security layer). */
  other: number;
  descriptions: number;
  /** Symbols that arrived before the description (buffered, up to a bound, then dropped). */
  early: number;
  decodeAttempts: number;
  decodeFailures: number;
  /** Spool records that failed their CRC (on resume or when read back). */
  corruptRecords: number;
  /** Blocks found complete in the spool at start (not decoded again). */
  resumedBlocks: number;
  /** Whole-object hash mismatches after decoding (the transfer then starts over). */
  hashMismatches: number;
  /** Blocks that decoded but failed `checkBlock` (their symbols are collected again). */
  blocksRejected: number;
}

export interface ReceiverOptions {
  /** Final path of the object. */
  out: string;
  /** Spool directory (default: `.OUTNAME.iotupd` next to `out`, same file system for the rename). */
  spoolDir?: string;
  objectId?: Uint8Array;
  name?: string;
  /** Reject objects larger than this (default 2^40, the RaptorQ limit). */
  maxObjectSize?: number;
  /**
   * Hook for the security layer: called with the raw datagram and its decoded form before the
   * packet is used. Return false to drop it (counted as `rejected`).
   */
  accept?: (datagram: Uint8Array, packet: FountainPacket) => boolean;
  /** Buffer at most this many symbols that arrive before any description. */
  earlyBuffer?: number;
  /** Keep the spool after success (tests). */
  keepSpool?: boolean;
  /**
   * Per-block check before a block is written to its final place (issue 5: the block's hash
   * committed by the signed manifest). False: the block's symbols are discarded and collected again.
   */
  checkBlock?: (sbn: number, block: Uint8Array) => boolean;
  /**
   * Where block decodes run (default: synchronously, inside push). The network driver passes a
   * WorkerDecoder; completion is then signalled through onComplete (and failures through onError).
   */
  decoder?: DecodeExecutor;
  onComplete?: () => void;
  onError?: (err: IotupdError) => void;
  /** Called after each block that needed the decoder (the driver uses it to return memory). */
  afterDecode?: () => void;
}

export interface ObjectInfo {
  objectId: Uint8Array;
  name: string;
  size: number;
  oti: Oti;
  otiBytes: Uint8Array;
  hashAlgorithm: number;
  hash: Uint8Array;
}

export interface ReceiverProgress {
  object?: ObjectInfo;
  blocks: number;
  blocksDone: number;
  /** Symbols needed in total (sum of K). */
  needed: number;
  /** Distinct useful symbols held (capped at K per block). */
  have: number;
  complete: boolean;
}

interface BlockState {
  sbn: number;
  offset: number;
  length: number;
  k: number;
  done: boolean;
  /** ESIs held (source in data.part, or spooled). */
  held: HeldSymbols;
  /** Spooled symbols: parallel arrays ESI -> record index. */
  spoolEsi: number[];
  spoolIndex: number[];
  nextAttempt: number;
  /** A decode of this block is queued or running. */
  decoding: boolean;
  /** Block check of the units in data.part so far: the sum of their SOURCE CRCs (Spool.blockDone). */
  check: number;
}

export type PushResult = 'complete' | 'progress' | 'ignored';

/** The symbols of a decode attempt: the first `fromData` are in data.part, the rest in the spool. */
interface Selection {
  esis: Int32Array;
  count: number;
  fromData: number;
}

/**
 * The symbols held for one block. Source ESIs (< K) live in typed arrays (5 bytes per source
 * symbol: a 1 GiB object costs ~1 MB), only the few repair ESIs in a Set; per-symbol JS
 * objects would cost more than the 100 MB a device may have.
 */
class HeldSymbols {
  /** 0 absent, 1 held in the spool, 2 held in data.part (its CRC is in the journal). */
  private state: Uint8Array | undefined;
  private readonly repair = new Set<number>();
  size = 0;
  inData = 0;
  constructor(private readonly k: number) {}

  has(esi: number): boolean {
    return esi < this.k ? (this.state?.[esi] ?? 0) !== 0 : this.repair.has(esi);
  }

  isInData(esi: number): boolean {
    return esi < this.k && this.state?.[esi] === 2;
  }

  private source(): Uint8Array {
    return (this.state ??= new Uint8Array(this.k));
  }

  add(esi: number): void {
    if (this.has(esi)) return;
    if (esi < this.k) this.source()[esi] = 1;
    else this.repair.add(esi);
    this.size += 1;
  }

  addInData(esi: number): void {
    if (this.has(esi)) return;
    this.source()[esi] = 2;
    this.size += 1;
    this.inData += 1;
  }

  delete(esi: number): void {
    if (!this.has(esi)) return;
    if (esi < this.k) {
      if (this.state?.[esi] === 2) this.inData -= 1;
      (this.state as Uint8Array)[esi] = 0;
    } else this.repair.delete(esi);
    this.size -= 1;
  }
}

const DEFAULT_MAX_SIZE = 2 ** 40;
/** Read-back size for the whole-object hash: fits the L2 cache, so the hash reads what the read just wrote. */
const HASH_CHUNK = 256 * 1024;
/**
 * Short reads of data.part for a decode go through a window of READ_WINDOW bytes. With loss, a
 * block's source symbols in data.part form hundreds of short runs (about 420 at 30 % loss,
 * K = 2013): one read each before, about ten reads a block now. Runs of at least DIRECT_READ
 * bytes are read straight into place (one copy instead of two).
 */
const READ_WINDOW = 256 * 1024;
const DIRECT_READ = 16 * 1024;
/** Symbols kept beyond the attempt size while a block decodes (a failed attempt retries at once). */
const SPARE_WHILE_DECODING = 16;

/**
 * Fountain receiver core (docs/protocol.md "Receiver"): fed datagrams by a driver, it selects one
 * object, keeps symbols in an on-disk spool (bounded memory whatever the object size), decodes
 * each block as soon as it holds K (then K+1, ...) symbols, verifies the whole-object hash and
 * renames the result into place. It never touches a socket or a clock; its spool uses synchronous
 * file I/O so that simulations stay deterministic.
 */
export class FountainReceiver {
  readonly stats: ReceiverStats = {
    datagrams: 0,
    received: 0,
    used: 0,
    duplicate: 0,
    late: 0,
    foreign: 0,
    malformed: 0,
    conflicts: 0,
    rejected: 0,
    other: 0,
    descriptions: 0,
    early: 0,
    decodeAttempts: 0,
    decodeFailures: 0,
    corruptRecords: 0,
    resumedBlocks: 0,
    hashMismatches: 0,
    blocksRejected: 0,
  };
  readonly out: string;
  readonly spoolDir: string;
  private object: ObjectInfo | undefined;
  private description: Uint8Array | undefined;
  private spool: Spool | undefined;
  private blocks: BlockState[] = [];
  private blocksDone = 0;
  private needed = 0;
  private complete = false;
  private early: Uint8Array[] = [];
  private failed: IotupdError | undefined;
  private readonly decoder: DecodeExecutor;
  /** Bumped when the object is reset: decode results of an earlier generation are ignored. */
  private generation = 0;
  /** One reusable buffer for block reads and hashing: memory stays flat over many blocks. */
  private scratch = new Uint8Array(0);
  /** The read window's buffer (READ_WINDOW bytes once a decode needed it), reused by every fill. */
  private windowBytes = new Uint8Array(0);
  /**
   * The whole-object hash, fed in block order as blocks complete (blockComplete, hashDoneBlocks):
   * each block's bytes are hashed while they are in memory anyway, instead of all of data.part
   * being read back at the end. Blocks 0 .. hashedBlocks-1 are in it.
   */
  private hasher: Hasher | undefined;
  private hashedBlocks = 0;
  private sawLoss = false;

  constructor(private readonly opts: ReceiverOptions) {
    this.decoder = opts.decoder ?? syncDecoder;
    this.out = resolve(opts.out);
    this.spoolDir = opts.spoolDir ? resolve(opts.spoolDir) : join(dirname(this.out), `.${basename(this.out)}.iotupd`);
    checkWritableDir(dirname(this.out));
    const saved = Spool.readObject(this.spoolDir);
    if (saved) {
      let resumed = false;
      try {
        const p = decodePacket(saved);
        if (p.kind === 'description') resumed = this.adopt(saved, p, true);
      } catch {
        // An unreadable spool header: start over.
      }
      if (!resumed) Spool.remove(this.spoolDir);
    }
  }

  get info(): ObjectInfo | undefined {
    return this.object;
  }

  get isComplete(): boolean {
    return this.complete;
  }

  /**
   * No block can use another symbol now: each unfinished one is being decoded and holds spare
   * symbols for a retry. The driver leaves the group meanwhile, so the device stops paying for
   * traffic it cannot use (the receiver picks what it receives; nothing is sent back).
   */
  get saturated(): boolean {
    if (!this.object || this.complete || this.failed) return false;
    for (const b of this.blocks) if (!b.done && !(b.decoding && b.held.size >= b.nextAttempt + SPARE_WHILE_DECODING)) return false;
    return true;
  }

  /**
   * True once some block will have to be decoded: a source symbol came after a gap in its
   * block's source symbols (one was lost, or another sender sends them), or a repair symbol was
   * kept. The driver then warms the decoder up while symbols still arrive (InlineDecoder.warmUp).
   */
  get lossSeen(): boolean {
    return this.sawLoss;
  }

  /** Reception overhead: symbols used / sum of K - 1 (0 when no block is done yet). */
  get overhead(): number {
    let k = 0;
    for (const b of this.blocks) if (b.done) k += b.k;
    return k === 0 ? 0 : this.stats.used / k - 1;
  }

  progress(): ReceiverProgress {
    let have = 0;
    for (const b of this.blocks) have += b.done ? b.k : Math.min(b.k, b.held.size);
    return { object: this.object, blocks: this.blocks.length, blocksDone: this.blocksDone, needed: this.needed, have, complete: this.complete };
  }

  /**
   * Feed one datagram. Decoding, hashing and the final rename happen inside this call when the
   * datagram completes a block or the object. Storage failures throw StorageError (fatal).
   */
  push(datagram: Uint8Array): PushResult {
    if (this.failed) throw this.failed;
    this.stats.datagrams += 1;
    if (this.complete) return 'ignored';
    let p: FountainPacket;
    try {
      p = decodePacket(datagram);
    } catch {
      this.stats.malformed += 1;
      return 'ignored';
    }
    if (this.opts.accept && !this.opts.accept(datagram, p)) {
      this.stats.rejected += 1;
      return 'ignored';
    }
    try {
      if (p.kind === 'description') return this.onDescription(datagram, p);
      if (p.kind === 'symbol') return this.onSymbol(datagram, p);
      this.stats.other += 1;
      return 'ignored';
    } catch (err) {
      if (err instanceof StorageError) {
        this.failed = err;
        this.spool?.abandon();
        this.spool = undefined;
      }
      throw err;
    }
  }

  private onDescription(datagram: Uint8Array, p: FountainPacket & { kind: 'description' }): PushResult {
    this.stats.descriptions += 1;
    if (this.object) {
      if (!bytesEqual(p.objectId, this.object.objectId)) {
        this.stats.foreign += 1;
        return 'ignored';
      }
      const d = p.description;
      const same = d.size === this.object.size && d.hashAlgorithm === this.object.hashAlgorithm && bytesEqual(d.hash, this.object.hash) && bytesEqual(d.oti, this.object.otiBytes);
      if (!same) this.stats.conflicts += 1;
      return 'ignored';
    }
    if (this.opts.objectId && !bytesEqual(this.opts.objectId, p.objectId)) {
      this.stats.foreign += 1;
      return 'ignored';
    }
    if (this.opts.name !== undefined && this.opts.name !== p.description.name) {
      this.stats.foreign += 1;
      return 'ignored';
    }
    if (!this.adopt(datagram, p, false)) {
      this.stats.malformed += 1;
      return 'ignored';
    }
    // Replay symbols that came before the description.
    const early = this.early;
    this.early = [];
    let result: PushResult = 'progress';
    for (const e of early) {
      const q = decodePacket(e);
      if (q.kind === 'symbol' && bytesEqual(q.objectId, p.objectId)) {
        if (this.onSymbol(e, q) === 'complete') result = 'complete';
      }
    }
    if (this.complete) result = 'complete';
    return result;
  }

  /** Validate a description and make it the selected object; resume from the spool when `resuming`. */
  private adopt(datagram: Uint8Array, p: FountainPacket & { kind: 'description' }, resuming: boolean): boolean {
    const d: DescriptionBody = p.description;
    let oti: Oti;
    let hasher: Hasher;
    try {
      oti = decodeOti(d.oti);
      hasher = createHasher(d.hashAlgorithm);
    } catch {
      return false;
    }
    if (d.hash.length !== HASH_LENGTH || oti.transferLength !== d.size || d.size > (this.opts.maxObjectSize ?? DEFAULT_MAX_SIZE)) return false;
    if (!bytesEqual(deriveObjectId(d.oti, d.hashAlgorithm, d.hash), p.objectId)) return false;
    if (resuming) {
      if (this.opts.objectId && !bytesEqual(this.opts.objectId, p.objectId)) return false;
      if (this.opts.name !== undefined && this.opts.name !== d.name) return false;
    }
    let parts: { sbn: number; offset: number; length: number; k: number }[];
    try {
      parts = blockPartition(oti);
    } catch {
      return false;
    }
    const objectId = new Uint8Array(p.objectId);
    this.object = { objectId, name: d.name, size: d.size, oti, otiBytes: new Uint8Array(d.oti), hashAlgorithm: d.hashAlgorithm, hash: new Uint8Array(d.hash) };
    this.description = new Uint8Array(datagram);
    this.blocks = parts.map((b) => ({ ...b, done: false, held: new HeldSymbols(b.k), spoolEsi: [], spoolIndex: [], nextAttempt: b.k, decoding: false, check: 0 }));
    this.needed = parts.reduce((s, b) => s + b.k, 0);
    this.hasher = hasher;
    this.hashedBlocks = 0;
    if (!resuming) Spool.writeObject(this.spoolDir, this.description);
    const tag = new DataView(objectId.buffer).getUint32(0);
    this.spool = new Spool(this.spoolDir, tag, oti.symbolSize);
    this.spool.setBlockCount(parts.length);
    if (resuming) this.restore();
    if (this.blocks.length === 0 || this.blocks.every((b) => b.done)) this.finish();
    return true;
  }

  /** Rebuild the per-block state from the spool after a restart. */
  private restore(): void {
    const spool = this.spool as Spool;
    const T = (this.object as ObjectInfo).oti.symbolSize;
    const sources: { sbn: number; esi: number; crc: number; length: number }[] = [];
    const done = new Map<number, number>();
    const { corrupt } = spool.scan((r) => {
      const b = this.blocks[r.sbn];
      if (!b) {
        this.stats.corruptRecords += 1;
        return;
      }
      if (r.kind === RecordKind.BLOCK_DONE) {
        done.set(r.sbn, r.crc);
      } else if (r.kind === RecordKind.SYMBOL) {
        if (!b.held.has(r.esi)) {
          b.held.add(r.esi);
          b.spoolEsi.push(r.esi);
          b.spoolIndex.push(r.index);
        }
      } else if (r.kind === RecordKind.SOURCE) {
        sources.push({ sbn: r.sbn, esi: r.esi, crc: r.crc, length: r.length });
      }
    });
    this.stats.corruptRecords += corrupt;
    // BLOCK_DONE records: the block is done if data.part holds the bytes the record's CRC covers
    // (nothing was fdatasync'ed: after a power loss they may not have reached the disk).
    for (const [sbn, crc] of done) {
      const b = this.blocks[sbn] as BlockState;
      if (spool.checkBlockInData(crc, sbn, b.offset, b.length)) {
        b.done = true;
        this.blocksDone += 1;
        this.stats.resumedBlocks += 1;
        this.stats.used += b.k;
      } else {
        this.stats.corruptRecords += 1;
      }
    }
    // SOURCE records: check their bytes in data.part now, block by block (one read per block).
    sources.sort((a, b) => a.sbn - b.sbn || a.esi - b.esi);
    let cur: { sbn: number; data: Uint8Array } | undefined;
    for (const s of sources) {
      const b = this.blocks[s.sbn] as BlockState;
      if (b.done || b.held.has(s.esi)) continue;
      if (s.esi >= b.k || s.length !== Math.min(T, b.length - s.esi * T)) {
        this.stats.corruptRecords += 1;
        continue;
      }
      if (!cur || cur.sbn !== s.sbn) cur = { sbn: s.sbn, data: spool.readDataInto(b.offset, this.scratchFor(b.length)) };
      const bytes = cur.data.subarray(s.esi * T, s.esi * T + s.length);
      if (spool.unitCrc(s.sbn, s.esi, bytes) !== s.crc >>> 0) {
        this.stats.corruptRecords += 1;
        continue;
      }
      b.held.addInData(s.esi);
      b.check = (b.check + s.crc) >>> 0;
    }
    for (const b of this.blocks) {
      if (b.done) {
        b.held = new HeldSymbols(b.k);
        b.spoolEsi = [];
        b.spoolIndex = [];
      } else {
        b.nextAttempt = b.k;
        if (b.held.size >= b.k) this.tryDecode(b);
      }
    }
  }

  private onSymbol(datagram: Uint8Array, p: FountainPacket & { kind: 'symbol' }): PushResult {
    const obj = this.object;
    if (!obj) {
      this.stats.early += 1;
      if (this.early.length < (this.opts.earlyBuffer ?? 1024)) this.early.push(new Uint8Array(datagram));
      return 'ignored';
    }
    if (!bytesEqual(p.objectId, obj.objectId)) {
      this.stats.foreign += 1;
      return 'ignored';
    }
    const { sbn, esi, symbol } = p.symbol;
    const b = this.blocks[sbn];
    if (!b || symbol.length !== obj.oti.symbolSize) {
      this.stats.malformed += 1;
      return 'ignored';
    }
    this.stats.received += 1;
    if (b.done) {
      this.stats.late += 1;
      return 'ignored';
    }
    if (b.held.has(esi)) {
      this.stats.duplicate += 1;
      return 'ignored';
    }
    if (b.decoding && b.held.size >= b.nextAttempt + SPARE_WHILE_DECODING) {
      // Enough spare symbols in case this decode fails: do not spool more meanwhile.
      this.stats.late += 1;
      return 'ignored';
    }
    const spool = this.spool as Spool;
    const T = obj.oti.symbolSize;
    if (esi < b.k && obj.oti.subBlocks === 1) {
      // RFC 6330 4.4.1.2, N = 1: source symbol ESI holds block bytes [ESI*T, ESI*T+T).
      const real = Math.min(T, b.length - esi * T);
      const bytes = symbol.subarray(0, real);
      if (b.held.inData < esi) this.sawLoss = true;
      b.check = (b.check + spool.writeSource(sbn, esi, b.offset + esi * T, bytes)) >>> 0;
      b.held.addInData(esi);
    } else {
      if (esi >= b.k || b.held.size < esi) this.sawLoss = true;
      b.held.add(esi);
      b.spoolEsi.push(esi);
      b.spoolIndex.push(spool.appendSymbol(sbn, esi, symbol));
    }
    if (b.held.size >= b.nextAttempt) this.tryDecode(b);
    return this.complete ? 'complete' : 'progress';
  }

  private tryDecode(b: BlockState): void {
    if (b.decoding || b.done) return;
    const obj = this.object as ObjectInfo;
    const spool = this.spool as Spool;
    const direct = obj.oti.subBlocks === 1;
    this.stats.decodeAttempts += 1;
    // Source symbols in data.part were CRC-checked when restored from the spool or written in
    // this run; the whole-object hash is the final check of everything.
    if (direct && b.held.inData === b.k) {
      // Every source symbol is already in place and in the block check: nothing to decode,
      // and nothing to read back unless the caller checks blocks (the hash reads it in order).
      if (this.opts.checkBlock) {
        const block = spool.readDataInto(b.offset, this.scratchFor(b.length));
        if (!this.opts.checkBlock(b.sbn, block)) {
          this.rejectBlock(b);
          return;
        }
        this.blockComplete(b, b.k, block);
        return;
      }
      this.blockComplete(b, b.k, undefined);
      return;
    }
    b.decoding = true;
    const generation = this.generation;
    // Blocks of one sub-block decode in the decoder's own memory when it can (no K*T job buffer);
    // a caller's block check needs the whole decoded block, which the other path returns.
    if (direct && !this.opts.checkBlock && this.decoder.decodeInPlace) {
      this.decoder.decodeInPlace(
        () => this.selectInPlace(b, generation),
        (result, job) => this.onDecodedInPlace(b, generation, job, result),
      );
      return;
    }
    this.decoder.decode(
      () => this.gather(b, generation),
      (result, job) => this.onDecoded(b, generation, job, result),
    );
  }

  /**
   * The symbols of a block's decode attempt: exactly the attempt's number (K, then K+1, ...),
   * source symbols first (the decoder needs them anyway), then repair symbols. More would only
   * cost decode time and memory, and would count as reception overhead. Undefined when the
   * block is no longer worth decoding (a newer object, or done).
   */
  private select(b: BlockState, generation: number): Selection | undefined {
    if (!this.spool || generation !== this.generation || b.done) return undefined;
    const n = Math.min(Math.max(b.nextAttempt, b.k), b.held.inData + b.spoolEsi.length);
    const esis = new Int32Array(n);
    let count = 0;
    for (let esi = 0; esi < b.k && count < n; esi++) if (b.held.isInData(esi)) esis[count++] = esi;
    const fromData = count;
    for (let i = 0; i < b.spoolEsi.length && count < n; i++) esis[count++] = b.spoolEsi[i] as number;
    return { esis, count, fromData };
  }

  /**
   * Reads the selected symbols back to back into `into`: the ones in data.part (source symbols
   * with N = 1), each run of consecutive ESIs in one read, then the spooled ones (repair
   * symbols, and every symbol with sub-blocks). A spool record that fails its check is dropped
   * from the block (and counted); returns false then.
   */
  private fill(b: BlockState, sel: Selection, into: Uint8Array): boolean {
    const spool = this.spool as Spool;
    const T = (this.object as ObjectInfo).oti.symbolSize;
    const { esis, count, fromData } = sel;
    // data.part changes between decodes, not during one: the window lives for this fill only.
    const window = { start: 0, length: 0 };
    let i = 0;
    while (i < fromData) {
      const first = esis[i] as number;
      const at = i;
      while (i + 1 < fromData && esis[i + 1] === (esis[i] as number) + 1) i++;
      i++;
      const start = first * T;
      const end = Math.min(b.length, (esis[i - 1] as number) * T + T);
      this.readData(window, b.offset + start, into.subarray(at * T, at * T + (end - start)));
      // The last source symbol is zero-padded (RFC 6330 4.4.1.2); reused memory is not zero.
      if (end - start < (i - at) * T) into.fill(0, at * T + (end - start), i * T);
    }
    // The spooled symbols were selected in spool order (select), so the j-th is spoolEsi[j].
    const firstRepair = i;
    const bad: number[] = [];
    for (; i < count; i++) {
      const j = i - firstRepair;
      const esi = esis[i] as number;
      const sym = b.spoolEsi[j] === esi ? spool.readSymbol(b.spoolIndex[j] as number, b.sbn, esi) : undefined;
      if (sym) into.set(sym, i * T);
      else bad.push(j);
    }
    for (let x = bad.length - 1; x >= 0; x--) {
      const j = bad[x] as number;
      this.stats.corruptRecords += 1;
      b.held.delete(b.spoolEsi[j] as number);
      b.spoolEsi.splice(j, 1);
      b.spoolIndex.splice(j, 1);
    }
    return bad.length === 0;
  }

  /**
   * Fills `out` from data.part at `offset` through a read window (bytes `w.start` on of data.part
   * in windowBytes): a range inside the window is copied, a short one outside moves the window
   * there, a long one is read directly.
   */
  private readData(w: { start: number; length: number }, offset: number, out: Uint8Array): void {
    const spool = this.spool as Spool;
    if (offset >= w.start && offset + out.length <= w.start + w.length) {
      out.set(this.windowBytes.subarray(offset - w.start, offset - w.start + out.length));
      return;
    }
    if (out.length >= DIRECT_READ) {
      spool.readDataInto(offset, out);
      return;
    }
    if (this.windowBytes.length === 0) this.windowBytes = new Uint8Array(READ_WINDOW);
    spool.readDataInto(offset, this.windowBytes);
    w.start = offset;
    w.length = READ_WINDOW;
    out.set(this.windowBytes.subarray(0, out.length));
  }

  /** Read a block's symbols back into a job buffer (for decoders that need one: a worker's). */
  private gather(b: BlockState, generation: number): DecodeJob {
    const obj = this.object as ObjectInfo;
    const T = obj.oti.symbolSize;
    const empty: DecodeJob = { k: b.k, symbolSize: T, blockLength: b.length, subBlocks: obj.oti.subBlocks, alignment: obj.oti.alignment, esis: new Int32Array(0), symbols: new Uint8Array(0), count: 0 };
    const sel = this.select(b, generation);
    if (!sel) return empty;
    // At least blockLength bytes: the decoded block comes back in this buffer (DecodeJob).
    const bytes = Math.max(sel.count * T, b.length);
    const symbols = this.decoder.buffer ? this.decoder.buffer(bytes) : new Uint8Array(bytes);
    if (!this.fill(b, sel, symbols)) {
      // A corrupt repair record: decode from what remains (held is smaller now, see onDecoded).
      return empty;
    }
    return { ...empty, esis: sel.esis.subarray(0, sel.count), symbols: symbols.subarray(0, sel.count * T), count: sel.count };
  }

  /** An in-place decode's selection: the decoder asks for the symbols once it has room for them. */
  private selectInPlace(b: BlockState, generation: number): InPlaceJob {
    const T = (this.object as ObjectInfo).oti.symbolSize;
    const sel = this.select(b, generation) ?? { esis: new Int32Array(0), count: 0, fromData: 0 };
    return { k: b.k, symbolSize: T, blockLength: b.length, esis: sel.esis, count: sel.count, fill: (into) => this.fill(b, sel, into) };
  }

  private onDecodedInPlace(b: BlockState, generation: number, job: InPlaceJob, result: InPlaceResult): void {
    b.decoding = false;
    if (generation !== this.generation || !this.spool || this.failed || b.done) return;
    try {
      if (result === 'unreadable') {
        // A corrupt repair record was dropped: try again with what remains, or wait for more.
        if (b.held.size >= b.nextAttempt) this.tryDecode(b);
        return;
      }
      if (!result) {
        this.decodeFailed(b, job.count);
        return;
      }
      // The selection took every source symbol in data.part: the rows of all others are valid.
      this.writeMissing(b, result);
      this.blockComplete(b, job.count, undefined);
      this.opts.afterDecode?.();
      if (this.complete) this.opts.onComplete?.();
    } catch (err) {
      this.fail(err);
    }
  }

  private decodeFailed(b: BlockState, count: number): void {
    this.stats.decodeFailures += 1;
    b.nextAttempt = Math.max(b.k, count + 1);
    if (b.held.size >= b.nextAttempt) this.tryDecode(b);
  }

  /**
   * Writes the block's source symbols that are not in data.part from `rows` (i at i*T), each run
   * of consecutive ones in one write, adding them to the block check.
   */
  private writeMissing(b: BlockState, rows: Uint8Array): void {
    const spool = this.spool as Spool;
    const T = (this.object as ObjectInfo).oti.symbolSize;
    let esi = 0;
    while (esi < b.k) {
      if (b.held.isInData(esi)) {
        esi++;
        continue;
      }
      const first = esi;
      for (; esi < b.k && !b.held.isInData(esi); esi++) {
        const start = esi * T;
        b.check = (b.check + spool.unitCrc(b.sbn, esi, rows.subarray(start, Math.min(b.length, start + T)))) >>> 0;
      }
      spool.writeData(b.offset + first * T, rows.subarray(first * T, Math.min(b.length, esi * T)));
    }
  }

  private onDecoded(b: BlockState, generation: number, job: DecodeJob, result: DecodeResult): void {
    b.decoding = false;
    // A result for an object that was reset (hash mismatch) or a receiver that was closed: ignore.
    if (generation !== this.generation || !this.spool || this.failed || b.done) return;
    try {
      const obj = this.object as ObjectInfo;
      const spool = this.spool;
      const T = obj.oti.symbolSize;
      if (job.count === 0) {
        // gather found a corrupt repair record and dropped it: try again with what remains.
        if (b.held.size >= b.nextAttempt) this.tryDecode(b);
        return;
      }
      if (!result) {
        this.decodeFailed(b, job.count);
        return;
      }
      if (this.opts.checkBlock && !this.opts.checkBlock(b.sbn, result.subarray(0, b.length))) {
        this.rejectBlock(b);
        return;
      }
      if (obj.oti.subBlocks === 1) {
        // Write only the source symbols that are not in data.part already.
        this.writeMissing(b, result);
      } else {
        spool.writeData(b.offset, result.subarray(0, b.length));
        b.check = 0;
        for (let start = 0, i = 0; start < b.length; start += T, i++) b.check = (b.check + spool.unitCrc(b.sbn, i, result.subarray(start, Math.min(b.length, start + T)))) >>> 0;
      }
      this.blockComplete(b, job.count, result.subarray(0, b.length));
      this.opts.afterDecode?.();
      if (this.complete) this.opts.onComplete?.();
    } catch (err) {
      this.fail(err);
    }
  }

  private fail(err: unknown): void {
    const e = err instanceof IotupdError ? err : new IotupdError('ERR_INTERNAL', String(err));
    if (e instanceof StorageError) {
      this.failed = e;
      this.spool?.abandon();
      this.spool = undefined;
    }
    if (this.opts.onError) this.opts.onError(e);
    else throw e;
  }

  /**
   * The block failed the caller's check (e.g. its hash committed in a signed manifest): some
   * symbol was forged. Which one is unknown, so forget every symbol of the block and collect
   * it again (the spool records stay, unreferenced).
   */
  private rejectBlock(b: BlockState): void {
    this.stats.blocksRejected += 1;
    b.held = new HeldSymbols(b.k);
    b.spoolEsi = [];
    b.spoolIndex = [];
    b.nextAttempt = b.k;
    b.check = 0;
  }

  /** `block` holds the block's bytes as they now are in data.part, if the caller has them in memory. */
  private blockComplete(b: BlockState, used: number, block: Uint8Array | undefined): void {
    const spool = this.spool as Spool;
    spool.blockDone(b.sbn, b.check);
    b.done = true;
    this.blocksDone += 1;
    this.stats.used += used;
    b.held = new HeldSymbols(b.k);
    b.spoolEsi = [];
    b.spoolIndex = [];
    if (block && b.sbn === this.hashedBlocks) {
      (this.hasher as Hasher).update(block);
      this.hashedBlocks += 1;
    }
    this.hashDoneBlocks();
    if (this.blocksDone === this.blocks.length) this.finish();
  }

  /**
   * Feed the whole-object hash with the blocks from `hashedBlocks` on that are done (completed
   * without being read, out of order, or resumed from the spool), read back from data.part in
   * 256 KiB chunks that stay in the CPU cache between read and hash, up to the first block not done.
   */
  private hashDoneBlocks(): void {
    const spool = this.spool as Spool;
    const h = this.hasher as Hasher;
    for (let b = this.blocks[this.hashedBlocks]; b?.done; b = this.blocks[this.hashedBlocks]) {
      const buf = this.scratchFor(Math.min(HASH_CHUNK, b.length));
      for (let pos = 0; pos < b.length; pos += buf.length) h.update(spool.readDataInto(b.offset + pos, buf.subarray(0, Math.min(buf.length, b.length - pos))));
      this.hashedBlocks += 1;
    }
  }

  /**
   * All blocks done: verify the whole hash (of the bytes as written to data.part; most of it was
   * fed block by block), then rename into place atomically.
   */
  private finish(): void {
    const obj = this.object as ObjectInfo;
    const spool = this.spool as Spool;
    spool.flush();
    this.hashDoneBlocks();
    const digest = (this.hasher as Hasher).digest();
    this.hasher = undefined;
    if (!bytesEqual(digest, obj.hash)) {
      // Poisoned or corrupted data got through: never deliver it. Start this object over.
      this.stats.hashMismatches += 1;
      this.generation += 1;
      spool.abandon();
      Spool.remove(this.spoolDir);
      const desc = this.description as Uint8Array;
      this.object = undefined;
      this.spool = undefined;
      this.blocks = [];
      this.blocksDone = 0;
      this.adopt(desc, decodePacket(desc) as FountainPacket & { kind: 'description' }, false);
      return;
    }
    spool.close();
    this.spool = undefined;
    const tmp = join(this.spoolDir, 'data.part');
    try {
      // data.part may be shorter than the object if it ends with bytes never written (zero size).
      const fd = openSync(tmp, 'r+');
      try {
        fsyncSync(fd);
      } finally {
        closeSync(fd);
      }
      renameSync(tmp, this.out);
      const dfd = openSync(dirname(this.out), 'r');
      try {
        fsyncSync(dfd);
      } finally {
        closeSync(dfd);
      }
    } catch (err) {
      throw new StorageError(`cannot move the result to ${this.out}: ${(err as Error).message}`, 'ERR_STORAGE', { cause: err });
    }
    if (!this.opts.keepSpool) Spool.remove(this.spoolDir);
    this.complete = true;
  }

  private scratchFor(length: number): Uint8Array {
    if (this.scratch.length < length) this.scratch = new Uint8Array(length);
    return this.scratch.subarray(0, length);
  }

  /** Flush buffered spool records and close files (the spool stays for a later resume). */
  close(): void {
    this.spool?.close();
    this.spool = undefined;
  }

  /** Stop without flushing buffers: what a SIGKILL leaves behind (tests). */
  crash(): void {
    this.spool?.abandon();
    this.spool = undefined;
  }

  get objectIdHex(): string | undefined {
    return this.object ? objectIdHex(this.object.objectId) : undefined;
  }
}

function checkWritableDir(dir: string): void {
  try {
    mkdirSync(dir, { recursive: true });
    accessSync(dir, fsConstants.W_OK);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'error';
    throw new StorageError(`output directory ${dir} is not writable (${code})`, 'ERR_STORAGE_PERMISSION', { cause: err });
  }
}
