import { BlockEncoder, EncoderBuild, blockPartition, encodeOti, type Oti, type RepairEncoder } from '../fec/index.js';
import { encodeDescription, encodeSymbol, HashAlgorithm, MAX_ESI, type HeaderInput, type Sealer } from '../wire/fountain.js';
import { UsageError } from '../errors.js';
import { deriveObjectId } from './object.js';
import type { ObjectSource } from './source.js';
import type { DatagramProducer } from './pipeline.js';

/** Datagram buffers are carved from slabs of this size (freshPacket). */
const SLAB_BYTES = 64 * 1024;

export interface SenderOptions {
  oti: Oti;
  source: ObjectSource;
  hash: Uint8Array;
  hashAlgorithm?: number;
  name?: string;
  /** This sender's index among `senders` cooperating senders (disjoint ESI sequences). */
  senderIndex?: number;
  senders?: number;
  /** Stop after this many symbols per block (from this sender). Default: run forever. */
  symbolsPerBlock?: number;
  /** Stop after this long (ms since the first call of next). */
  durationMs?: number;
  /** Send the description at least every this many symbols and every this many ms. */
  descriptionEvery?: number;
  descriptionIntervalMs?: number;
  /** Memory budget for cached block encoders (bytes). Default 512 MiB (a 100 MiB object's 44 encoders fit). */
  encoderCacheBytes?: number;
  /** Start at round j (ESI = i + n*j): lets a restarted sender skip what it already sent. */
  startRound?: number;
  /** Fills the trailer of every packet (the security layer's tag), see Sealer. */
  sealer?: Sealer;
}

/**
 * The blocks a sender with these options will send repair symbols for: all of them, unless
 * `symbolsPerBlock` stops it before its ESIs reach a block's K.
 */
export function repairBlocks<B extends { k: number }>(blocks: readonly B[], opts: Pick<SenderOptions, 'senderIndex' | 'senders' | 'startRound' | 'symbolsPerBlock'>): B[] {
  const lastEsi = opts.symbolsPerBlock === undefined ? Infinity : (opts.senderIndex ?? 0) + (opts.senders ?? 1) * ((opts.startRound ?? 0) + opts.symbolsPerBlock - 1);
  return blocks.filter((b) => lastEsi >= b.k);
}

export type SenderStep = { datagram: Uint8Array; kind: 'description' | 'symbol' } | { wait: number } | { done: true };

export interface SenderStats {
  packets: number;
  symbols: number;
  descriptions: number;
  bytes: number;
  rounds: number;
  /** Repair encoders built, in all (whether ahead of time by `prepare` or when first needed). */
  encodersBuilt: number;
  /** Of those, built ahead of time in slices by `prepare` (while the pacer had nothing to send). */
  encodersPrepared: number;
}

const READ_AHEAD = 64 * 1024;
/** `prepare` slices: bytes of a block loaded per call, and plan operations replayed per call (~0.5 ms at T = 1184). */
const PREPARE_LOAD_BYTES = 256 * 1024;
const PREPARE_PLAN_OPS = 4096;

type BlockInfo = { sbn: number; offset: number; length: number; k: number };
/** An encoder under construction: its block, the build, and how many of the block's bytes are loaded. */
type Building = { block: BlockInfo; build: EncoderBuild; loaded: number };

/**
 * I/O-free fountain sender (docs/protocol.md "Sender"). Round-robin over the source blocks, so
 * every block advances at the same pace (docs/decisions/0003-round-robin-schedule.md); in each
 * block the ESIs i, i+n, i+2n, ... (sender i of n) cover the source symbols first and then fresh
 * repair symbols, never repeating an ESI until the 24-bit ESI space wraps. The first producer of
 * a send pipeline (pipeline.ts): it does not pace, the pipeline's one token bucket does;
 * `next(now)` returns the next datagram at once.
 */
export class FountainSender implements DatagramProducer {
  readonly objectId: Uint8Array;
  readonly oti: Oti;
  /** The whole-object digest the description announces, and its algorithm (HashAlgorithm). */
  readonly hash: Uint8Array;
  readonly hashAlgorithm: number;
  readonly stats: SenderStats = { packets: 0, symbols: 0, descriptions: 0, bytes: 0, rounds: 0, encodersBuilt: 0, encodersPrepared: 0 };
  private readonly blocks: { sbn: number; offset: number; length: number; k: number }[];
  private readonly description: Uint8Array;
  private readonly header: HeaderInput;
  private readonly index: number;
  private readonly n: number;
  private readonly descEvery: number;
  private readonly descInterval: number;
  private readonly encoders = new Map<number, RepairEncoder | BlockEncoder>();
  /** The encoder `prepare` is building, and how many of its block's bytes are loaded. */
  private building: Building | undefined;
  /** Blocks `prepare` builds encoders for, in the order the repair round visits them. */
  private prepareNext = 0;
  private readonly prepareLimit: number;
  private readonly maxEncoders: number;
  private readonly symbolPacketLength: number;
  private start: number | undefined;
  private lastDescAt = -Infinity;
  private sinceDesc = Infinity;
  /** Next round j of each block (ESI = i + n*j). */
  private readonly rounds: Float64Array;
  private cursor = 0;
  /** Symbols still to send from the current block before moving on (repair batching). */
  private dwell = 0;
  private readonly repairBatch: number;
  private readonly windows = new Map<number, { start: number; bytes: Uint8Array }>();
  private readonly symbolTemplate: Uint8Array;
  private readonly symbolOffset: number;
  private finished = false;
  private slab = new Uint8Array(0);
  private slabUsed = 0;

  constructor(private readonly opts: SenderOptions) {
    const { oti, source } = opts;
    if (source.size !== oti.transferLength) throw new UsageError(`OTI transfer length ${oti.transferLength} differs from the object size ${source.size}`);
    this.oti = oti;
    this.n = opts.senders ?? 1;
    this.index = opts.senderIndex ?? 0;
    if (!Number.isInteger(this.n) || this.n < 1 || this.n > 1024) throw new UsageError('--senders must be an integer from 1 to 1024');
    if (!Number.isInteger(this.index) || this.index < 0 || this.index >= this.n) throw new UsageError('--sender-index must be from 0 to senders-1');
    this.blocks = blockPartition(oti);
    const otiBytes = encodeOti(oti);
    const hashAlgorithm = opts.hashAlgorithm ?? HashAlgorithm.SHA256;
    this.hash = opts.hash;
    this.hashAlgorithm = hashAlgorithm;
    this.objectId = deriveObjectId(otiBytes, hashAlgorithm, opts.hash);
    const sealer = opts.sealer;
    this.header = {
      objectId: this.objectId,
      flags: sealer?.flags ?? 0,
      extensions: sealer?.extensions,
      trailer: sealer ? new Uint8Array(sealer.trailerLength) : undefined,
    };
    this.description = encodeDescription(this.header, {
      oti: otiBytes,
      size: oti.transferLength,
      hashAlgorithm,
      hash: opts.hash,
      name: opts.name ?? '',
    });
    sealer?.seal(this.description);
    this.symbolTemplate = encodeSymbol(this.header, { sbn: 0, esi: 0, symbol: new Uint8Array(oti.symbolSize) });
    this.symbolPacketLength = this.symbolTemplate.length;
    this.symbolOffset = this.symbolPacketLength - (sealer?.trailerLength ?? 0) - oti.symbolSize;
    this.descEvery = opts.descriptionEvery ?? 256;
    this.descInterval = opts.descriptionIntervalMs ?? 1000;
    this.rounds = new Float64Array(this.blocks.length).fill(opts.startRound ?? 0);
    const largest = Math.max(1, ...this.blocks.map((b) => b.length));
    // An encoder holds the block's source (K*T), its L intermediate symbols and working memory:
    // about 4 K*T resident in all, so that is what each one counts against the budget.
    this.maxEncoders = Math.max(1, Math.floor((opts.encoderCacheBytes ?? 512 * 2 ** 20) / (largest * 4 + 4096)));
    // When the encoders of all blocks do not fit in the cache, repair symbols are sent in
    // batches per block so that each encoder built serves many symbols (interleaving becomes
    // coarser, each block still advances at the same pace over a round). Round-robin visits
    // miss an LRU cache every time, so every visit builds an encoder: the batch grows with how
    // far the cache falls short, so that precode solves stay a small share of the sending time
    // (docs/decisions/0004-encoders-prepared-in-slices.md).
    this.repairBatch = this.blocks.length > this.maxEncoders ? 64 * Math.ceil(this.blocks.length / this.maxEncoders) : 1;
    // Encoders worth preparing: N = 1 (with sub-blocks the encoder makes source symbols too), and
    // only if this sender will send repair symbols at all; as many as the cache keeps.
    const repairs = repairBlocks(this.blocks, opts).length > 0;
    this.prepareLimit = oti.subBlocks === 1 && repairs ? Math.min(this.blocks.length, this.maxEncoders) : 0;
  }

  /**
   * Does one slice (well under a millisecond) of building the repair round's block encoders
   * ahead of time: loading 256 KiB of a block or replaying part of its plan (EncoderBuild). The
   * driver calls it while the pacer has nothing to release, so that the repair round starts
   * without a pause (built on demand, the encoders of a 100 MiB object take about half a second,
   * during which nothing would be sent: docs/decisions/0004-encoders-prepared-in-slices.md).
   * Returns false when there is nothing left to prepare.
   */
  prepare(): boolean {
    if (!this.building) {
      while (this.prepareNext < this.prepareLimit && this.encoders.has((this.blocks[this.prepareNext] as BlockInfo).sbn)) this.prepareNext++;
      if (this.prepareNext >= this.prepareLimit) return false;
      const block = this.blocks[this.prepareNext++] as BlockInfo;
      this.building = { block, build: new EncoderBuild(block.k, this.oti.symbolSize), loaded: 0 };
      return true;
    }
    this.advanceBuild();
    return true;
  }

  /** One slice of the encoder being prepared: load up to 256 KiB of its block, or replay part of its plan. */
  private advanceBuild(): void {
    const b = this.building as Building;
    if (b.loaded < b.block.length) {
      this.load(b, PREPARE_LOAD_BYTES);
      return;
    }
    if (!b.build.step(PREPARE_PLAN_OPS)) return;
    this.building = undefined;
    this.stats.encodersPrepared += 1;
    this.adopt(b.block.sbn, b.build.finish());
  }

  /** Loads up to `bytes` more of the block into the build's arena (then its zero padding). */
  private load(b: Building, bytes: number): void {
    const n = Math.min(bytes, b.block.length - b.loaded);
    this.opts.source.readInto(b.block.offset + b.loaded, b.build.sourceView.subarray(b.loaded, b.loaded + n));
    b.loaded += n;
    // The last source symbol's padding (RFC 6330 4.4.1.2); the arena may be reused memory.
    if (b.loaded === b.block.length) b.build.sourceView.fill(0, b.block.length);
  }

  /** Loads the rest of the block, replays the rest of the plan, and caches the encoder. */
  private completeBuild(b: Building): RepairEncoder {
    if (b.loaded < b.block.length) this.load(b, Infinity);
    const enc = b.build.finish();
    this.adopt(b.block.sbn, enc);
    return enc;
  }

  /** Bytes of one symbol datagram (UDP payload). */
  /** Stop: release the source (its file descriptor) and the cached encoders. */
  close(): void {
    this.finished = true;
    this.encoders.clear();
    this.opts.source.close();
  }

  get packetLength(): number {
    return this.symbolPacketLength;
  }

  get blockCount(): number {
    return this.blocks.length;
  }

  /**
   * True when the next symbol needs a block encoder that is not built yet: a RaptorQ precode
   * solve of several milliseconds. The driver, and a stage that gathers datagrams ahead (signed
   * digest batches), send what they hold first, so the last source symbols do not wait for the repair round's
   * encoders.
   */
  get nextBuildsEncoder(): boolean {
    const block = this.blocks[this.cursor];
    if (!block) return false;
    const esi = this.index + this.n * (this.rounds[this.cursor] as number);
    return (esi >= block.k || this.oti.subBlocks !== 1) && !this.encoders.has(block.sbn);
  }

  /** The object description datagram (also sent periodically by `next`). */
  descriptionPacket(): Uint8Array {
    return this.description;
  }

  next(now: number): SenderStep {
    if (this.start === undefined) this.start = now;
    if (this.opts.durationMs !== undefined && now - this.start >= this.opts.durationMs) return { done: true };
    if (this.finished) return { done: true };
    if (this.blocks.length === 0) return this.emptyObject(now);
    if (this.sinceDesc >= this.descEvery || now - this.lastDescAt >= this.descInterval) {
      this.lastDescAt = now;
      this.sinceDesc = 0;
      this.stats.descriptions += 1;
      this.count(this.description.length);
      return { datagram: this.description, kind: 'description' };
    }
    const datagram = this.nextSymbol();
    this.sinceDesc += 1;
    this.stats.symbols += 1;
    this.count(datagram.length);
    return { datagram, kind: 'symbol' };
  }

  /** A zero-length object has no blocks: only descriptions are sent. */
  private emptyObject(now: number): SenderStep {
    if (now - this.lastDescAt < this.descInterval) return { wait: this.descInterval - (now - this.lastDescAt) };
    this.lastDescAt = now;
    this.stats.descriptions += 1;
    this.count(this.description.length);
    return { datagram: this.description, kind: 'description' };
  }

  private count(bytes: number): void {
    this.stats.packets += 1;
    this.stats.bytes += bytes;
  }

  private nextSymbol(): Uint8Array {
    const block = this.blocks[this.cursor] as { sbn: number; offset: number; length: number; k: number };
    const j = this.rounds[this.cursor] as number;
    let esi = this.index + this.n * j;
    if (esi > MAX_ESI) {
      // The ESI space of this block is exhausted (after ~16 M symbols per block): start a new cycle.
      this.rounds[this.cursor] = 0;
      esi = this.index;
    }
    this.rounds[this.cursor] = (this.rounds[this.cursor] as number) + 1;
    const T = this.oti.symbolSize;
    // One fresh buffer per datagram (a stage such as SecureSender may hold earlier ones): header
    // template, FEC Payload ID, then the symbol written in place.
    const packet = this.freshPacket();
    packet.set(this.symbolTemplate.subarray(0, this.symbolOffset - 4));
    const at = this.symbolOffset;
    packet[at - 4] = block.sbn;
    packet[at - 3] = (esi >>> 16) & 0xff;
    packet[at - 2] = (esi >>> 8) & 0xff;
    packet[at - 1] = esi & 0xff;
    if (esi < block.k && this.oti.subBlocks === 1) {
      // RFC 6330 4.4.1.2 with N = 1: source symbol ESI is bytes [ESI*T, ESI*T+T) of the block, zero padded.
      const start = esi * T;
      const take = Math.max(0, Math.min(T, block.length - start));
      this.readSource(block, start, take, packet, at);
    } else {
      this.encoder(block).symbolInto(esi, packet, at);
    }
    this.opts.sealer?.seal(packet);
    if (this.dwell > 0) this.dwell -= 1;
    else if (esi >= block.k && this.repairBatch > 1) this.dwell = this.repairBatch - 1;
    if (this.dwell === 0) {
      this.cursor += 1;
      if (this.cursor === this.blocks.length) {
        this.cursor = 0;
        this.stats.rounds += 1;
        const spb = this.opts.symbolsPerBlock;
        if (spb !== undefined && Math.min(...this.rounds) >= (this.opts.startRound ?? 0) + spb) this.finished = true;
      }
    }
    return packet;
  }

  /**
   * A zeroed, never-used datagram buffer carved from a shared slab. Allocating each 1.2 KB
   * datagram as its own Uint8Array costs a backing store, zeroed and tracked as external memory,
   * per datagram; a view of a fresh 64 KiB slab costs a small fraction of that. Slabs are never
   * reused: one is dropped when all its datagrams are.
   */
  private freshPacket(): Uint8Array {
    const len = this.symbolPacketLength;
    if (this.slabUsed + len > this.slab.length) {
      this.slab = new Uint8Array(Math.max(SLAB_BYTES, len));
      this.slabUsed = 0;
    }
    const packet = this.slab.subarray(this.slabUsed, this.slabUsed + len);
    this.slabUsed += len;
    return packet;
  }

  /**
   * Source bytes through a small read-ahead window per block: round-robin visits each block's
   * consecutive source symbols, so one pread serves many datagrams.
   */
  private readSource(block: { sbn: number; offset: number; length: number }, start: number, take: number, out: Uint8Array, at: number): void {
    if (take === 0) return;
    let w = this.windows.get(block.sbn);
    if (!w || start < w.start || start + take > w.start + w.bytes.length) {
      const len = Math.min(block.length - start, Math.max(take, READ_AHEAD));
      w = { start, bytes: this.opts.source.read(block.offset + start, len) };
      this.windows.set(block.sbn, w);
    }
    out.set(w.bytes.subarray(start - w.start, start - w.start + take), at);
    if (start + take >= block.length) this.windows.delete(block.sbn);
  }

  private encoder(block: BlockInfo): RepairEncoder | BlockEncoder {
    const cached = this.encoders.get(block.sbn);
    if (cached) {
      // Map order is insertion order: re-insert to mark as most recently used.
      this.encoders.delete(block.sbn);
      this.encoders.set(block.sbn, cached);
      return cached;
    }
    if (this.building?.block.sbn === block.sbn) {
      // Being prepared: finish it now.
      const b = this.building;
      this.building = undefined;
      return this.completeBuild(b);
    }
    // N = 1: the block's bytes go straight into the encoder's arena (no block-sized buffer).
    if (this.oti.subBlocks === 1) return this.completeBuild({ block, build: new EncoderBuild(block.k, this.oti.symbolSize), loaded: 0 });
    const enc = new BlockEncoder(this.opts.source.read(block.offset, block.length), block.k, this.oti.symbolSize, this.oti.subBlocks, this.oti.alignment);
    this.adopt(block.sbn, enc);
    return enc;
  }

  /** Puts a new encoder in the LRU cache, dropping the least recently used beyond its size. */
  private adopt(sbn: number, enc: RepairEncoder | BlockEncoder): void {
    this.stats.encodersBuilt += 1;
    this.encoders.set(sbn, enc);
    while (this.encoders.size > this.maxEncoders) {
      const oldest = this.encoders.keys().next().value as number;
      this.encoders.delete(oldest);
    }
  }
}
