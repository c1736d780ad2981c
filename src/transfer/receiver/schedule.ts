import { BlockDecoder } from '../../fec/index.js';
import type { DecodeExecutor, DecodeJob, DecodeResult } from '../decoding.js';
import type { BlockState } from './held.js';
import type { ReceiverStore } from './store.js';
import type { ObjectInfo, ReceiverStats } from './types.js';

/**
 * Short reads of the object's bytes for a decode go through a window of READ_WINDOW bytes. With
 * loss, a block's source symbols at their place form hundreds of short runs (about 420 at 30 %
 * loss, K = 2013): about ten reads a block through the window instead of one per run. Runs of at
 * least DIRECT_READ bytes are read straight into place (one copy instead of two).
 */
const READ_WINDOW = 256 * 1024;
const DIRECT_READ = 16 * 1024;

/** The symbols of a decode attempt: the first `placed` are at their place in the object, the rest kept. */
interface Selection {
  esis: Int32Array;
  count: number;
  placed: number;
}

/** What the scheduler reports back to the receiver core. */
export interface DecodeHost {
  /** Block `b` is complete at its place; `bytes` are its bytes if in memory; `decoded`: it went through the decoder. */
  completed(b: BlockState, used: number, bytes: Uint8Array | undefined, decoded: boolean): void;
  /** Block `b` failed the caller's block check: its symbols are collected again. */
  rejected(b: BlockState): void;
  /** A failure outside push (a decode that completed later): storage errors are fatal. */
  fail(err: unknown): void;
  /** A buffer of `length` bytes, reused by the receiver for block reads and hashing. */
  scratch(length: number): Uint8Array;
}

/**
 * Decode scheduling for one object (docs/protocol.md "Receiver", Decoding): a block is tried
 * as soon as it holds K symbols, then K+1, ... after a failure. A block that needs a decode asks
 * the executor for a turn; in the turn the scheduler reads exactly the attempt's symbols from the
 * store, hands them to the decoder (or, on the receiving thread, decodes in place in the
 * decoder's own memory), and writes the block's missing source symbols back to the store.
 * Nothing in the executor reads or writes the store.
 */
export class DecodeScheduler {
  /** The object was reset or the receiver stopped: turns and results still to come are ignored. */
  private retired = false;
  /** The read window's buffer (READ_WINDOW bytes once a decode needed it), reused by every fill. */
  private windowBytes = new Uint8Array(0);
  private readonly T: number;
  private readonly direct: boolean;

  constructor(
    private readonly host: DecodeHost,
    private readonly decoder: DecodeExecutor,
    private readonly store: ReceiverStore,
    private readonly info: ObjectInfo,
    private readonly stats: ReceiverStats,
    private readonly checkBlock: ((sbn: number, block: Uint8Array) => boolean) | undefined,
  ) {
    this.T = info.oti.symbolSize;
    // RFC 6330 4.4.1.2: with one sub-block, source symbol ESI is bytes [ESI*T, ESI*T+T) of its block.
    this.direct = info.oti.subBlocks === 1;
  }

  retire(): void {
    this.retired = true;
  }

  /** Block `b` holds the symbols its next attempt needs: complete it, or decode it in a turn. */
  schedule(b: BlockState): void {
    if (b.decoding || b.done || this.retired) return;
    this.stats.decodeAttempts += 1;
    // Source symbols at their place were checked when resumed or written in this run; the
    // whole-object hash is the final check of everything.
    if (this.direct && b.held.placed === b.k) {
      // Every source symbol is in place: nothing to decode, and nothing to read back unless the
      // caller checks blocks (the hash reads it in order).
      if (!this.checkBlock) return this.host.completed(b, b.k, undefined, false);
      const block = this.store.readData(b.offset, this.host.scratch(b.length));
      if (!this.checkBlock(b.sbn, block)) return this.host.rejected(b);
      return this.host.completed(b, b.k, block, false);
    }
    b.decoding = true;
    this.decoder.request(() => this.turn(b));
  }

  private turn(b: BlockState): void {
    if (this.retired || b.done) {
      b.decoding = false;
      return;
    }
    try {
      // In place when the executor decodes on this thread; a caller's block check needs the
      // whole decoded block, which the job path returns.
      if (this.direct && !this.checkBlock && this.decoder.inPlace) this.decodeInPlace(b);
      else this.decodeJob(b);
    } catch (err) {
      b.decoding = false;
      this.host.fail(err);
    }
  }

  private decodeInPlace(b: BlockState): void {
    const sel = this.select(b);
    const dec = new BlockDecoder(b.k, this.T, b.length, 1, 1);
    try {
      // The plan first: a set of ESIs that cannot determine the block fails before anything is read.
      const into = dec.prepareInPlace(sel.esis, sel.count);
      if (!into) {
        b.decoding = false;
        return this.failed(b, sel.count);
      }
      if (!this.fill(b, sel, into)) {
        b.decoding = false;
        return this.retry(b);
      }
      const rows = dec.decodeMissing();
      b.decoding = false;
      // The selection took every source symbol at its place: the rows of all others are valid.
      this.writeMissing(b, rows);
      this.host.completed(b, sel.count, undefined, true);
    } finally {
      dec.release();
    }
  }

  private decodeJob(b: BlockState): void {
    const { oti } = this.info;
    const sel = this.select(b);
    // At least blockLength bytes: the decoded block comes back in this buffer (DecodeJob).
    const bytes = Math.max(sel.count * this.T, b.length);
    const symbols = this.decoder.buffer ? this.decoder.buffer(bytes) : new Uint8Array(bytes);
    if (!this.fill(b, sel, symbols)) {
      b.decoding = false;
      return this.retry(b);
    }
    const job: DecodeJob = {
      k: b.k,
      symbolSize: this.T,
      blockLength: b.length,
      subBlocks: oti.subBlocks,
      alignment: oti.alignment,
      esis: sel.esis.subarray(0, sel.count),
      symbols: symbols.subarray(0, sel.count * this.T),
      count: sel.count,
    };
    this.decoder.decode(job, (result, j) => this.decoded(b, j, result));
  }

  private decoded(b: BlockState, job: DecodeJob, result: DecodeResult): void {
    b.decoding = false;
    // A result for an object that was reset (hash mismatch) or a receiver that stopped: ignore.
    if (this.retired || b.done) return;
    try {
      if (!result) return this.failed(b, job.count);
      const block = result.subarray(0, b.length);
      if (this.checkBlock && !this.checkBlock(b.sbn, block)) return this.host.rejected(b);
      if (this.direct) this.writeMissing(b, result);
      else {
        this.store.resetBlock(b.sbn);
        this.store.writeUnits(b.sbn, 0, block);
      }
      this.host.completed(b, job.count, block, true);
    } catch (err) {
      this.host.fail(err);
    }
  }

  private failed(b: BlockState, count: number): void {
    this.stats.decodeFailures += 1;
    b.nextAttempt = Math.max(b.k, count + 1);
    this.retry(b);
  }

  /** A kept symbol that did not survive was dropped (fill): try again with what remains, or wait for more. */
  private retry(b: BlockState): void {
    if (b.held.size >= b.nextAttempt) this.schedule(b);
  }

  /**
   * The symbols of a block's decode attempt: exactly the attempt's number (K, then K+1, ...),
   * source symbols at their place first (the decoder needs them anyway), then kept symbols.
   * More would only cost decode time and memory, and would count as reception overhead.
   */
  private select(b: BlockState): Selection {
    const n = Math.min(Math.max(b.nextAttempt, b.k), b.held.placed + b.keptEsi.length);
    const esis = new Int32Array(n);
    let count = 0;
    if (b.held.placed > 0) for (let esi = 0; esi < b.k && count < n; esi++) if (b.held.isPlaced(esi)) esis[count++] = esi;
    const placed = count;
    for (let i = 0; i < b.keptEsi.length && count < n; i++) esis[count++] = b.keptEsi[i] as number;
    return { esis, count, placed };
  }

  /**
   * Reads the selected symbols back to back into `into`: the ones at their place (source symbols
   * with N = 1), each run of consecutive ESIs in one read, then the kept ones. A kept symbol that
   * did not survive is dropped from the block (and counted); returns false then.
   */
  private fill(b: BlockState, sel: Selection, into: Uint8Array): boolean {
    const store = this.store;
    const T = this.T;
    const { esis, count, placed } = sel;
    // The object's bytes change between decodes, not during one: the window lives for this fill only.
    const window = { start: 0, length: 0 };
    let i = 0;
    while (i < placed) {
      const first = esis[i] as number;
      const at = i;
      while (i + 1 < placed && esis[i + 1] === (esis[i] as number) + 1) i++;
      i++;
      const start = first * T;
      const end = Math.min(b.length, (esis[i - 1] as number) * T + T);
      this.readData(window, b.offset + start, into.subarray(at * T, at * T + (end - start)));
      // The last source symbol is zero-padded (RFC 6330 4.4.1.2); reused memory is not zero.
      if (end - start < (i - at) * T) into.fill(0, at * T + (end - start), i * T);
    }
    // The kept symbols were selected in the order kept (select), so the j-th is keptEsi[j].
    const firstKept = i;
    const bad: number[] = [];
    for (; i < count; i++) {
      const j = i - firstKept;
      const esi = esis[i] as number;
      const sym = b.keptEsi[j] === esi ? store.readSymbol(b.keptRef[j] as number, b.sbn, esi) : undefined;
      if (sym) into.set(sym, i * T);
      else bad.push(j);
    }
    for (let x = bad.length - 1; x >= 0; x--) {
      const j = bad[x] as number;
      this.stats.corruptRecords += 1;
      b.held.delete(b.keptEsi[j] as number);
      b.keptEsi.splice(j, 1);
      b.keptRef.splice(j, 1);
    }
    return bad.length === 0;
  }

  /**
   * Fills `out` with the object's bytes at `offset` through a read window (bytes `w.start` on in
   * windowBytes): a range inside the window is copied, a short one outside moves the window
   * there, a long one is read directly.
   */
  private readData(w: { start: number; length: number }, offset: number, out: Uint8Array): void {
    if (offset >= w.start && offset + out.length <= w.start + w.length) {
      out.set(this.windowBytes.subarray(offset - w.start, offset - w.start + out.length));
      return;
    }
    if (out.length >= DIRECT_READ) {
      this.store.readData(offset, out);
      return;
    }
    if (this.windowBytes.length === 0) this.windowBytes = new Uint8Array(READ_WINDOW);
    this.store.readData(offset, this.windowBytes);
    w.start = offset;
    w.length = READ_WINDOW;
    out.set(this.windowBytes.subarray(0, out.length));
  }

  /**
   * Writes the block's source symbols that are not at their place from `rows` (i at i*T), each
   * run of consecutive ones in one write.
   */
  private writeMissing(b: BlockState, rows: Uint8Array): void {
    const T = this.T;
    let esi = 0;
    while (esi < b.k) {
      if (b.held.isPlaced(esi)) {
        esi++;
        continue;
      }
      const first = esi;
      while (esi < b.k && !b.held.isPlaced(esi)) esi++;
      this.store.writeUnits(b.sbn, first, rows.subarray(first * T, Math.min(b.length, esi * T)));
    }
  }
}
