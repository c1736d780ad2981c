import { Worker } from 'node:worker_threads';
import { BlockDecoder } from '../fec/index.js';

/** One block's symbols, gathered from the spool, for the RaptorQ decoder. */
export interface DecodeJob {
  k: number;
  symbolSize: number;
  blockLength: number;
  subBlocks: number;
  alignment: number;
  /** ESIs of the symbols, in the order of `symbols` (count entries). */
  esis: Int32Array;
  /**
   * count * symbolSize bytes, alone in its ArrayBuffer (transferable; the buffer may be longer,
   * from DecodeExecutor.buffer). At least blockLength bytes: the worker returns the decoded block
   * in this same buffer.
   */
  symbols: Uint8Array;
  count: number;
}

/** The decoded block (blockLength bytes), or undefined when the symbols do not determine it yet. */
export type DecodeResult = Uint8Array | undefined;

/**
 * Where block decodes run. The receiver core hands over a `gather` thunk (called when a decoder
 * is free, so queued blocks do not hold their symbols in memory) and gets `done` called later —
 * synchronously for `syncDecoder` (deterministic simulations), in a later event-loop turn for
 * `InlineDecoder`, from another thread for `WorkerDecoder` (reception goes on while a block
 * decodes, so a small socket buffer does not overflow during a decode).
 */
export interface DecodeExecutor {
  decode(gather: () => DecodeJob, done: (result: DecodeResult, job: DecodeJob) => void): void;
  close(): Promise<void>;
  /**
   * A buffer of at least `bytes` for a job's symbols (recycled by WorkerDecoder: no K*T-sized
   * garbage per block). Valid until the job's `done` returns.
   */
  buffer?(bytes: number): Uint8Array;
  /**
   * Decodes one block with one sub-block in the decoder's own memory (BlockDecoder
   * prepareInPlace): `select` names the symbols, its `fill` writes them where the decoder wants
   * them; `done` gets the rows of the source symbols that were not selected (InPlaceResult),
   * valid until it returns. No job buffer: K*T bytes less, and no copy, per block.
   */
  decodeInPlace?(select: () => InPlaceJob, done: (result: InPlaceResult, job: InPlaceJob) => void): void;
}

/** The symbols of one block (N = 1) for an in-place decode, and how to write them. */
export interface InPlaceJob {
  k: number;
  symbolSize: number;
  blockLength: number;
  /** ESIs of the symbols (count entries), in the order `fill` writes them. */
  esis: Int32Array;
  count: number;
  /** Writes the symbols back to back into `into` (count*T bytes); false if one could not be read. */
  fill(into: Uint8Array): boolean;
}

/**
 * K*T bytes in which source symbol i (at i*T) is valid for every source ESI i not among the
 * job's ESIs; undefined when the ESIs do not determine the block; 'unreadable' when `fill` failed.
 */
export type InPlaceResult = Uint8Array | undefined | 'unreadable';

/**
 * Synthetic decodes an InlineDecoder runs to warm itself up (InlineDecoder.warmUp). Measured in
 * the three-receiver runs at 10 % loss: the first 10-12 real decodes of K = 2013 took 20-110 ms
 * each for the plan instead of 4-7 ms (V8 tiering the solver up), about 0.3 s of the time after
 * the last symbol; warm-up plans recorded before joining with other shapes (8-byte symbols, ESIs
 * in a plain array) did not carry over. Eight decodes through the same code path, at the
 * object's own K and T, during reception did.
 */
export const WARM_UP_DECODES = 8;

/**
 * Warm-up decodes at the start that are smaller (K / 8), so that no single one stalls the
 * receiving thread for long while V8 is still compiling: with them the longest warm-up decode in
 * the three-receiver lab took 110-150 ms instead of 230-260 ms, and the 8 MiB socket buffer no
 * longer overflowed (six runs against two of three; 2026-11-26).
 */
const WARM_UP_SMALL = 2;

/** A synthetic in-place decode of K = `k`, T = `t`: every `gap`-th source symbol lost, repair symbols in their place. */
function warmUpJob(k: number, t: number, gap: number): InPlaceJob {
  const esis = new Int32Array(k);
  let n = 0;
  for (let esi = 0; n < k && esi < k; esi++) if (esi % gap !== 0) esis[n++] = esi;
  for (let r = 0; n < k; r++) esis[n++] = k + r;
  const fill = (into: Uint8Array): boolean => {
    into.fill(gap);
    return true;
  };
  return { k, symbolSize: t, blockLength: k * t, esis, count: k, fill };
}

/** Runs one in-place decode; the result handed to `done` is valid until `done` returns. */
export function runInPlaceJob(job: InPlaceJob, done: (result: InPlaceResult, job: InPlaceJob) => void): void {
  const dec = new BlockDecoder(job.k, job.symbolSize, job.blockLength, 1, 1);
  const into = dec.prepareInPlace(job.esis, job.count);
  let result: InPlaceResult;
  try {
    result = into === undefined ? undefined : job.fill(into) ? dec.decodeMissing() : 'unreadable';
  } catch (err) {
    dec.release();
    throw err;
  }
  try {
    done(result, job);
  } finally {
    dec.release();
  }
}

/**
 * Decodes a job's symbols in place; the block is written over them, into the job's own buffer
 * when it has room (DecodeJob.symbols), so a decode allocates no K*T-sized buffers of its own.
 */
export function runDecodeJob(job: DecodeJob): DecodeResult {
  const dec = new BlockDecoder(job.k, job.symbolSize, job.blockLength, job.subBlocks, job.alignment);
  const { symbols } = job;
  const room = symbols.buffer.byteLength - symbols.byteOffset >= job.blockLength;
  const out = room ? new Uint8Array(symbols.buffer, symbols.byteOffset, job.blockLength) : undefined;
  return dec.decodeFrom(job.esis, symbols, job.count, out);
}

export const syncDecoder: DecodeExecutor = {
  decode(gather, done) {
    const job = gather();
    done(runDecodeJob(job), job);
  },
  decodeInPlace(select, done) {
    runInPlaceJob(select(), done);
  },
  close: () => Promise.resolve(),
};

interface Pending {
  gather: () => DecodeJob;
  done: (result: DecodeResult, job: DecodeJob) => void;
}

/**
 * Decodes on the receiving thread, one block per event-loop turn (setImmediate), in place
 * (decodeInPlace) or into one reused job buffer: no second isolate, for devices with little
 * memory (`recv --low-memory`) and for receivers whose socket buffer can absorb a decode.
 * Deferring the decode (rather than running it inside push) lets the datagrams at hand be
 * processed first, the socket be read between two blocks' decodes, and the driver leave the
 * group as soon as every block has what its decode needs (FountainReceiver.saturated) instead
 * of after the last decode. A queued block holds no symbols: its `gather` (or `select`) runs
 * when its turn comes. Reception pauses during each decode (tens of ms at K = 2048); the socket
 * buffer absorbs that, and what it cannot absorb is loss, which the fountain code makes up for.
 */
export class InlineDecoder implements DecodeExecutor {
  private buf: ArrayBuffer | undefined;
  private inUse = false;
  /** Decodes waiting for their turn, each a thunk that gathers (or selects) and decodes. */
  private readonly queue: (() => void)[] = [];
  /** Warm-up decodes (warmUp): they run only when no real decode waits. */
  private readonly idle: (() => void)[] = [];
  /** Warm-up decodes run so far. */
  warmUps = 0;
  private turn: NodeJS.Immediate | NodeJS.Timeout | undefined;
  private closed = false;
  private receiving = false;
  /** When the last decode ended, and how long it took (ms, performance.now()). */
  private lastEnd = -Infinity;
  private lastTook = 0;
  /** A decode that threw (a bug, not bad symbols: those make it return undefined). */
  onError: ((err: Error) => void) | undefined;

  /**
   * While datagrams are still coming (the driver is in the group), decodes take at most half of
   * the thread's time: after a decode of d ms the next waits until d ms have passed, so the
   * socket is read in between and its buffer absorbs each decode. At 400 Mbit/s the decodes of
   * the first blocks to reach K, run back to back, overflowed a 4 MiB buffer and cost the blocks
   * still collecting symbols their arrivals. Once the receiver has left the group, decodes run
   * back to back.
   */
  setReceiving(receiving: boolean): void {
    if (receiving === this.receiving) return;
    this.receiving = receiving;
    this.cancelTurn();
    this.schedule();
  }

  decode(gather: () => DecodeJob, done: (result: DecodeResult, job: DecodeJob) => void): void {
    if (this.closed) return;
    this.queue.push(() => this.run({ gather, done }));
    this.schedule();
  }

  decodeInPlace(select: () => InPlaceJob, done: (result: InPlaceResult, job: InPlaceJob) => void): void {
    if (this.closed) return;
    this.queue.push(() => runInPlaceJob(select(), done));
    this.schedule();
  }

  /**
   * Queues `count` synthetic decodes of K = `k` (the first WARM_UP_SMALL of them K / 8), T = `t`
   * (warmUpJob) behind every real decode, so
   * that V8 has optimized the decoder by the time the real ones come: the driver calls it once the
   * receiver sees loss (FountainReceiver.lossSeen). They follow the half-time rule of
   * setReceiving, use the memory of one real decode, and a real decode queued later goes first.
   */
  warmUp(k: number, t: number, count = WARM_UP_DECODES): void {
    if (this.closed) return;
    for (let i = 0; i < count; i++) {
      // The first ones are an eighth of the size: cold, one of K = 2013 took 230-260 ms, longer
      // than the socket buffer holds at 390 Mbit/s (it overflowed: 450-690 datagrams lost).
      const size = i < WARM_UP_SMALL ? Math.max(32, Math.ceil(k / 8)) : k;
      const job = warmUpJob(size, t, [10, 4, 3, 7][i % 4] as number);
      this.idle.push(() =>
        runInPlaceJob(job, () => {
          this.warmUps += 1;
        }),
      );
    }
    this.schedule();
  }

  /** Decodes waiting for their turn (not counting warm-ups). */
  get pending(): number {
    return this.queue.length;
  }

  private schedule(): void {
    if (this.turn !== undefined || this.closed || (this.queue.length === 0 && this.idle.length === 0)) return;
    const wait = this.receiving ? this.lastEnd + this.lastTook - performance.now() : 0;
    this.turn = wait > 0 ? setTimeout(() => this.runNext(), Math.ceil(wait)) : setImmediate(() => this.runNext());
  }

  private cancelTurn(): void {
    if (this.turn === undefined) return;
    clearTimeout(this.turn as NodeJS.Timeout);
    clearImmediate(this.turn as NodeJS.Immediate);
    this.turn = undefined;
  }

  private runNext(): void {
    this.turn = undefined;
    // A timer may fire early by the event loop's cached clock: check the real one.
    if (this.receiving && performance.now() < this.lastEnd + this.lastTook) {
      this.schedule();
      return;
    }
    const next = this.queue.shift() ?? this.idle.shift();
    if (!next) return;
    const start = performance.now();
    try {
      next();
    } catch (err) {
      if (this.onError) this.onError(err instanceof Error ? err : new Error(String(err)));
      else throw err;
    } finally {
      this.lastEnd = performance.now();
      this.lastTook = this.lastEnd - start;
      this.schedule();
    }
  }

  private run({ gather, done }: Pending): void {
    const job = gather();
    this.inUse = true;
    let result: DecodeResult;
    try {
      result = runDecodeJob(job);
    } catch (err) {
      this.inUse = false;
      throw err;
    }
    // `done` may queue a retry of this block (a failed decode): its gather gets the buffer again,
    // as the failed job's symbols are no longer needed; a successful block is written out first.
    this.inUse = result !== undefined;
    try {
      done(result, job);
    } finally {
      this.inUse = false;
    }
  }

  buffer(bytes: number): Uint8Array {
    if (this.inUse) return new Uint8Array(bytes);
    if (!this.buf || this.buf.byteLength < bytes) this.buf = new ArrayBuffer(bytes);
    return new Uint8Array(this.buf, 0, bytes);
  }

  /** Drops the decodes not yet run (their `done` is never called). */
  close(): Promise<void> {
    this.closed = true;
    this.queue.length = 0;
    this.idle.length = 0;
    this.cancelTurn();
    return Promise.resolve();
  }
}

/** What decode-worker.ts posts back: the decoded block is a view into `buffer`, the job's own. */
export interface WorkerReply {
  ok: boolean;
  block?: Uint8Array;
  buffer?: ArrayBuffer;
  error?: string;
}

interface Posted {
  job: DecodeJob;
  done: Pending['done'];
}

/**
 * Decodes in worker threads (default one: the main thread keeps receiving). Each worker gets up
 * to `depth` jobs at once (default 2): the next block's symbols are gathered and posted while the
 * current one decodes, so the worker never waits for the main thread between blocks. Memory: one
 * more gathered block (K*T bytes) per worker.
 */
export class WorkerDecoder implements DecodeExecutor {
  private readonly all: Worker[] = [];
  private readonly queue: Pending[] = [];
  /** Jobs posted to each worker, oldest first (a worker answers in order). */
  private readonly posted = new Map<Worker, Posted[]>();
  private readonly depth: number;
  private closed = false;
  /** A job buffer back from the worker, for the next gather. */
  private readonly spare: ArrayBuffer[] = [];
  private holding = false;
  /** Errors in a worker (e.g. it could not load): reported to the receiver through `onError`. */
  onError: ((err: Error) => void) | undefined;

  constructor(threads = 1, depth = 2) {
    this.depth = Math.max(1, depth);
    for (let i = 0; i < Math.max(1, threads); i++) {
      const w = new Worker(new URL('./decode-worker.js', import.meta.url));
      w.unref();
      w.on('message', (msg: WorkerReply) => this.onMessage(w, msg));
      w.on('error', (err) => this.onError?.(err));
      this.all.push(w);
      this.posted.set(w, []);
    }
  }

  decode(gather: () => DecodeJob, done: (result: DecodeResult, job: DecodeJob) => void): void {
    if (this.closed) return;
    this.queue.push({ gather, done });
    this.pump();
  }

  private pump(): void {
    while (this.queue.length > 0 && !this.holding) {
      // The least loaded worker, if it has room.
      let best: Posted[] | undefined;
      let worker: Worker | undefined;
      for (const [w, jobs] of this.posted) {
        if (jobs.length < this.depth && (!best || jobs.length < best.length)) [best, worker] = [jobs, w];
      }
      if (!best || !worker) return;
      const p = this.queue.shift() as Pending;
      const job = p.gather();
      best.push({ job, done: p.done });
      worker.postMessage(job, [job.symbols.buffer as ArrayBuffer]);
    }
  }

  buffer(bytes: number): Uint8Array {
    const i = this.spare.findIndex((b) => b.byteLength >= bytes && b.byteLength <= bytes * 2);
    const buf = i >= 0 ? (this.spare.splice(i, 1)[0] as ArrayBuffer) : new ArrayBuffer(bytes);
    return new Uint8Array(buf, 0, bytes);
  }

  private onMessage(w: Worker, msg: WorkerReply): void {
    const b = this.posted.get(w)?.shift();
    if (this.closed || !b) return;
    // Jobs queued by `done` (a retry, the next block) are gathered after it returns, into the
    // buffer that just came back (it holds the block until then): depth + 1 buffers in all.
    this.holding = true;
    try {
      if (msg.error !== undefined) this.onError?.(new Error(`decoder thread: ${msg.error}`));
      else b.done(msg.ok ? msg.block : undefined, b.job);
    } finally {
      this.holding = false;
    }
    if (msg.buffer && msg.buffer.byteLength > 0 && this.spare.length < 1) this.spare.push(msg.buffer);
    this.pump();
  }

  async close(): Promise<void> {
    this.closed = true;
    this.queue.length = 0;
    await Promise.all(this.all.map((w) => w.terminate()));
  }
}
