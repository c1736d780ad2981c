import { decodePacket, objectIdHex, type FountainPacket } from '../../wire/fountain.js';
import { IotupdError, StorageError } from '../../errors.js';
import { bytesEqual } from '../object.js';
import { syncDecoder, type DecodeExecutor } from '../decoding.js';
import { forgetSymbols, newBlock, type BlockState } from './held.js';
import { resumeBlocks } from './resume.js';
import { DecodeScheduler, type DecodeHost } from './schedule.js';
import { describesSame, isWanted, selectObject, type DescriptionPacket, type Selected } from './select.js';
import type { ReceiverStore } from './store.js';
import { newStats, type ObjectInfo, type PushResult, type ReceiverOptions, type ReceiverProgress, type ReceiverStats } from './types.js';
import { ObjectHash } from './verify.js';

/** Symbols kept beyond the attempt size while a block decodes (a failed attempt retries at once). */
const SPARE_WHILE_DECODING = 16;

/** The object being received. */
interface Current {
  info: ObjectInfo;
  description: Uint8Array;
  blocks: BlockState[];
  blocksDone: number;
  needed: number;
  hash: ObjectHash;
  decodes: DecodeScheduler;
}

/**
 * Fountain receiver core (docs/protocol.md "Receiver"): fed datagrams and the caller's clock by a
 * driver, it selects one object (select.ts), keeps symbols in a store (store.ts: on disk or in
 * memory, bounded memory whatever the object size), decodes each block as soon as it holds K
 * (then K+1, ...) symbols (schedule.ts), verifies the whole-object hash (verify.ts) and has the
 * store commit the result. It touches no socket, clock or file itself; with the synchronous
 * decoder, everything happens inside push, so simulations are deterministic.
 */
export class FountainReceiver {
  readonly stats: ReceiverStats = newStats();
  readonly store: ReceiverStore;
  private cur: Current | undefined;
  private complete = false;
  private early: Uint8Array[] = [];
  private failed: IotupdError | undefined;
  private readonly decoder: DecodeExecutor;
  /** One reusable buffer for block reads and hashing: memory stays flat over many blocks. */
  private scratchBytes = new Uint8Array(0);
  private sawLoss = false;
  private now = 0;
  private selectedAt: number | undefined;
  private completedAt: number | undefined;

  /** Resumes the object the store holds if it matches the selection; otherwise the store is cleared. */
  constructor(private readonly opts: ReceiverOptions) {
    this.decoder = opts.decoder ?? syncDecoder;
    this.store = opts.store;
    const saved = this.store.saved();
    if (saved) {
      let resumed = false;
      try {
        const p = decodePacket(saved);
        if (p.kind === 'description' && isWanted(opts, p)) resumed = this.adopt(saved, p, true);
      } catch (err) {
        if (err instanceof StorageError) throw err;
        // An unreadable saved description: start over.
      }
      if (!resumed) this.store.discard();
    }
  }

  get info(): ObjectInfo | undefined {
    return this.cur?.info;
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
    if (!this.cur || this.complete || this.failed) return false;
    for (const b of this.cur.blocks) if (!b.done && !(b.decoding && b.held.size >= b.nextAttempt + SPARE_WHILE_DECODING)) return false;
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
    for (const b of this.cur?.blocks ?? []) if (b.done) k += b.k;
    return k === 0 ? 0 : this.stats.used / k - 1;
  }

  progress(): ReceiverProgress {
    const cur = this.cur;
    let have = 0;
    for (const b of cur?.blocks ?? []) have += b.done ? b.k : Math.min(b.k, b.held.size);
    return {
      object: cur?.info,
      blocks: cur?.blocks.length ?? 0,
      blocksDone: cur?.blocksDone ?? 0,
      needed: cur?.needed ?? 0,
      have,
      complete: this.complete,
      selectedAt: this.selectedAt,
      completedAt: this.completedAt,
    };
  }

  /**
   * Feed one datagram received at `now` (the caller's clock, e.g. performance.now(); only
   * reported in progress()). With the synchronous decoder, decoding, hashing and the commit
   * happen inside this call when the datagram completes a block or the object. Storage failures
   * throw StorageError (fatal: every later push throws it again).
   */
  push(datagram: Uint8Array, now = this.now): PushResult {
    if (this.failed) throw this.failed;
    this.now = now;
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
      if (err instanceof StorageError) this.stop(err);
      throw err;
    }
  }

  private onDescription(datagram: Uint8Array, p: DescriptionPacket): PushResult {
    this.stats.descriptions += 1;
    if (this.cur) {
      if (!bytesEqual(p.objectId, this.cur.info.objectId)) this.stats.foreign += 1;
      else if (!describesSame(this.cur.info, p.description)) this.stats.conflicts += 1;
      return 'ignored';
    }
    if (!isWanted(this.opts, p)) {
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

  /** Make a checked description the selected object; resume what the store holds when `resuming`. */
  private adopt(datagram: Uint8Array, p: DescriptionPacket, resuming: boolean): boolean {
    const sel: Selected | undefined = selectObject(p, this.opts.maxObjectSize);
    if (!sel) return false;
    const stored = this.store.open(datagram, sel.layout, resuming);
    const blocks = sel.layout.blocks.map(newBlock);
    const decodes = new DecodeScheduler(this.schedulerHost(), this.decoder, this.store, sel.info, this.stats, this.opts.checkBlock);
    const cur: Current = {
      info: sel.info,
      description: new Uint8Array(datagram),
      blocks,
      blocksDone: 0,
      needed: blocks.reduce((s, b) => s + b.k, 0),
      hash: new ObjectHash(sel.hasher, blocks, (n) => this.scratch(n)),
      decodes,
    };
    this.cur = cur;
    // A resumed object was selected in an earlier run, on another clock.
    this.selectedAt = resuming ? undefined : this.now;
    this.opts.onObject?.(sel.info);
    if (stored) {
      cur.blocksDone = resumeBlocks(blocks, stored, this.stats);
      if (this.opts.onBlock) for (const b of blocks) if (b.done) this.opts.onBlock(b.sbn);
      for (const b of blocks) if (!b.done && b.held.size >= b.k) decodes.schedule(b);
    }
    if (cur.blocksDone === blocks.length && !this.complete) this.finish(cur);
    return true;
  }

  private onSymbol(datagram: Uint8Array, p: FountainPacket & { kind: 'symbol' }): PushResult {
    const cur = this.cur;
    if (!cur) {
      this.stats.early += 1;
      if (this.early.length < (this.opts.earlyBuffer ?? 1024)) this.early.push(new Uint8Array(datagram));
      return 'ignored';
    }
    const obj = cur.info;
    if (!bytesEqual(p.objectId, obj.objectId)) {
      this.stats.foreign += 1;
      return 'ignored';
    }
    const { sbn, esi, symbol } = p.symbol;
    const b = cur.blocks[sbn];
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
      // Enough spare symbols in case this decode fails: keep no more meanwhile.
      this.stats.late += 1;
      return 'ignored';
    }
    if (esi < b.k && obj.oti.subBlocks === 1) {
      // RFC 6330 4.4.1.2, N = 1: source symbol ESI holds block bytes [ESI*T, ESI*T+T).
      const T = obj.oti.symbolSize;
      if (b.held.placed < esi) this.sawLoss = true;
      this.store.writeSource(sbn, esi, symbol.subarray(0, Math.min(T, b.length - esi * T)));
      b.held.addPlaced(esi);
    } else {
      if (esi >= b.k || b.held.size < esi) this.sawLoss = true;
      b.held.add(esi);
      b.keptEsi.push(esi);
      b.keptRef.push(this.store.keepSymbol(sbn, esi, symbol));
    }
    if (b.held.size >= b.nextAttempt) cur.decodes.schedule(b);
    return this.complete ? 'complete' : 'progress';
  }

  /** How the decode scheduler reports back; results for an object that was replaced are ignored there. */
  private schedulerHost(): DecodeHost {
    return {
      completed: (b, used, bytes, decoded) => {
        const cur = this.cur as Current;
        this.blockComplete(cur, b, used, bytes);
        if (!decoded) return;
        this.opts.afterDecode?.();
        if (this.complete) this.opts.onComplete?.();
      },
      rejected: (b) => this.rejectBlock(b),
      fail: (err) => this.fail(err),
      scratch: (n) => this.scratch(n),
    };
  }

  /** A failure reported outside push (a later decode's): storage errors stop the receiver. */
  private fail(err: unknown): void {
    const e = err instanceof IotupdError ? err : new IotupdError('ERR_INTERNAL', String(err));
    if (e instanceof StorageError) this.stop(e);
    if (this.opts.onError) this.opts.onError(e);
    else throw e;
  }

  private stop(err: StorageError): void {
    this.failed = err;
    this.cur?.decodes.retire();
    this.store.abandon();
  }

  /**
   * The block failed the caller's check (e.g. its hash committed in a signed manifest): some
   * symbol was forged. Which one is unknown, so forget every symbol of the block and collect
   * it again (what the store kept of it stays, unreferenced).
   */
  private rejectBlock(b: BlockState): void {
    this.stats.blocksRejected += 1;
    forgetSymbols(b);
    b.nextAttempt = b.k;
    this.store.resetBlock(b.sbn);
  }

  /** `bytes` holds the block's bytes as they now are in the store, if the caller has them in memory. */
  private blockComplete(cur: Current, b: BlockState, used: number, bytes: Uint8Array | undefined): void {
    this.store.blockDone(b.sbn);
    b.done = true;
    cur.blocksDone += 1;
    this.stats.used += used;
    forgetSymbols(b);
    cur.hash.completed(b, bytes, this.store);
    this.opts.onBlock?.(b.sbn);
    if (cur.blocksDone === cur.blocks.length) this.finish(cur);
  }

  /**
   * All blocks done: verify the whole-object hash (of the bytes as the store holds them; most of
   * it was fed block by block), then have the store commit the object.
   */
  private finish(cur: Current): void {
    if (!cur.hash.matches(cur.info.hash, this.store)) {
      // Poisoned or corrupted data got through: never deliver it. Start this object over.
      this.stats.hashMismatches += 1;
      cur.decodes.retire();
      this.store.discard();
      this.cur = undefined;
      this.adopt(cur.description, decodePacket(cur.description) as DescriptionPacket, false);
      return;
    }
    this.store.commit();
    this.complete = true;
    this.completedAt = this.now;
  }

  private scratch(length: number): Uint8Array {
    if (this.scratchBytes.length < length) this.scratchBytes = new Uint8Array(length);
    return this.scratchBytes.subarray(0, length);
  }

  /** Write out what the store buffers and release it (what it holds stays for a later resume). */
  close(): void {
    this.cur?.decodes.retire();
    if (!this.complete) this.store.close();
  }

  /** Stop without writing out buffers: what a SIGKILL leaves behind (tests). */
  crash(): void {
    this.cur?.decodes.retire();
    if (!this.complete) this.store.abandon();
  }

  get objectIdHex(): string | undefined {
    return this.cur ? objectIdHex(this.cur.info.objectId) : undefined;
  }
}
