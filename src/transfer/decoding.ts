import { Worker } from 'node:worker_threads';
import { BlockDecoder } from '../fec/index.js';

/** One block's symbols, gathered from the receiver's store, for the RaptorQ decoder. */
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
 * Where and when block decodes run. Data flows one way: the receiver asks for a turn
 * (`request`); when the executor grants it, the receiver reads the block's symbols from its
 * store into a job and hands the job over (`decode`); the executor hands the result back
 * (`done`), and the receiver writes it to its store. The executor never reads or writes the
 * store, and a block waiting for its turn holds no symbols in memory.
 *
 * `syncDecoder` grants turns at once and decodes inside the call (deterministic simulations);
 * `InlineDecoder` grants them one per event-loop turn, paced; `WorkerDecoder` grants them while
 * a worker thread has room (reception goes on while a block decodes, so a small socket buffer
 * does not overflow during a decode).
 */
export interface DecodeExecutor {
  /** Calls `turn` once a job handed over now would start at once; requests are granted in order. */
  request(turn: () => void): void;
  /** Decodes a job gathered in a turn; `done` gets the result (its buffer is the job's). */
  decode(job: DecodeJob, done: (result: DecodeResult, job: DecodeJob) => void): void;
  close(): Promise<void>;
  /**
   * A buffer of at least `bytes` for a job's symbols (recycled by WorkerDecoder and
   * InlineDecoder: no K*T-sized garbage per block). Valid until the job's `done` returns.
   */
  buffer?(bytes: number): Uint8Array;
  /**
   * True when turns run on the receiving thread (syncDecoder, InlineDecoder): the receiver may
   * then decode a block of one sub-block in place within its turn (BlockDecoder.prepareInPlace:
   * the symbols are read straight into the decoder's own memory, no K*T job buffer, no copy).
   */
  readonly inPlace?: boolean;
}

/**
 * Synthetic decodes an InlineDecoder runs to warm itself up (InlineDecoder.warmUp). Cold, the
 * first real decodes spend several times longer on their plans while V8 tiers the solver up, and
 * that time lands after the last symbol. Warm-up plans of other shapes (8-byte symbols, ESIs in a
 * plain array) recorded before joining do not carry over; decodes through the same code path, at
 * the object's own K and T, during reception do (docs/decisions/0005-inline-decoding.md).
 */
export const WARM_UP_DECODES = 8;

/**
 * Warm-up decodes at the start that are smaller (K / 8), so that no single one stalls the
 * receiving thread for long while V8 is still compiling: a cold full-size one can outlast what
 * an 8 MiB socket buffer holds at 400 Mbit/s (docs/decisions/0005-inline-decoding.md).
 */
const WARM_UP_SMALL = 2;

/** A synthetic in-place decode of K = `k`, T = `t`: every `gap`-th source symbol lost, repair symbols in their place. */
function warmUpDecode(k: number, t: number, gap: number): void {
  const esis = new Int32Array(k);
  let n = 0;
  for (let esi = 0; n < k && esi < k; esi++) if (esi % gap !== 0) esis[n++] = esi;
  for (let r = 0; n < k; r++) esis[n++] = k + r;
  const dec = new BlockDecoder(k, t, k * t, 1, 1);
  try {
    const into = dec.prepareInPlace(esis, k);
    if (into) {
      into.fill(gap);
      dec.decodeMissing();
    }
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
  request(turn) {
    turn();
  },
  decode(job, done) {
    done(runDecodeJob(job), job);
  },
  inPlace: true,
  close: () => Promise.resolve(),
};

/**
 * Decodes on the receiving thread, one block per event-loop turn (setImmediate), in place
 * or into one reused job buffer: no second isolate, for devices with little
 * memory (`recv --low-memory`) and for receivers whose socket buffer can absorb a decode.
 * Deferring the decode (rather than running it inside push) lets the datagrams at hand be
 * processed first, the socket be read between two blocks' decodes, and the driver leave the
 * group as soon as every block has what its decode needs (FountainReceiver.saturated) instead
 * of after the last decode. A block waiting for its turn holds no symbols: the receiver reads
 * them from its store when the turn comes, and decodes within it (in place, or into the one
 * reused job buffer through `decode`). Reception pauses during each decode (tens of ms at
 * K = 2048); the socket buffer absorbs that, and what it cannot absorb is loss, which the
 * fountain code makes up for.
 */
export class InlineDecoder implements DecodeExecutor {
  private buf: ArrayBuffer | undefined;
  private inUse = false;
  /** Turns requested and not yet granted. */
  private readonly queue: (() => void)[] = [];
  /** Warm-up decodes (warmUp): they run only when no real decode waits. */
  private readonly idle: (() => void)[] = [];
  /** Warm-up decodes run so far. */
  warmUps = 0;
  private timer: NodeJS.Immediate | NodeJS.Timeout | undefined;
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
   * socket is read in between and its buffer absorbs each decode. Run back to back at 400 Mbit/s,
   * the decodes of the first blocks to reach K would overflow a 4 MiB buffer and cost the blocks
   * still collecting symbols their arrivals. Once the receiver has left the group, decodes run
   * back to back.
   */
  setReceiving(receiving: boolean): void {
    if (receiving === this.receiving) return;
    this.receiving = receiving;
    this.cancelTurn();
    this.schedule();
  }

  request(turn: () => void): void {
    if (this.closed) return;
    this.queue.push(turn);
    this.schedule();
  }

  /** Decodes a job on this thread, now (called within a turn). */
  decode(job: DecodeJob, done: (result: DecodeResult, job: DecodeJob) => void): void {
    const result = runDecodeJob(job);
    // A successful block is written out of the buffer in `done`: a buffer asked for meanwhile
    // is a fresh one. A failed job's symbols are not needed any more.
    this.inUse = result !== undefined;
    try {
      done(result, job);
    } finally {
      this.inUse = false;
    }
  }

  readonly inPlace = true;

  /**
   * Queues `count` synthetic decodes of K = `k` (the first WARM_UP_SMALL of them K / 8), T = `t`
   * (warmUpDecode) behind every real decode, so that V8 has optimized the decoder by the time
   * the real ones come: the driver calls it once the receiver sees loss
   * (FountainReceiver.lossSeen). They follow the half-time rule of setReceiving, use the memory
   * of one real decode, and a real decode queued later goes first.
   */
  warmUp(k: number, t: number, count = WARM_UP_DECODES): void {
    if (this.closed) return;
    for (let i = 0; i < count; i++) {
      // The first ones are an eighth of the size: a cold full-size one lasts longer than the
      // socket buffer holds at 400 Mbit/s (WARM_UP_SMALL).
      const size = i < WARM_UP_SMALL ? Math.max(32, Math.ceil(k / 8)) : k;
      const gap = [10, 4, 3, 7][i % 4] as number;
      this.idle.push(() => {
        warmUpDecode(size, t, gap);
        this.warmUps += 1;
      });
    }
    this.schedule();
  }

  /** Turns waiting to be granted (not counting warm-ups). */
  get pending(): number {
    return this.queue.length;
  }

  private schedule(): void {
    if (this.timer !== undefined || this.closed || (this.queue.length === 0 && this.idle.length === 0)) return;
    const wait = this.receiving ? this.lastEnd + this.lastTook - performance.now() : 0;
    this.timer = wait > 0 ? setTimeout(() => this.runNext(), Math.ceil(wait)) : setImmediate(() => this.runNext());
  }

  private cancelTurn(): void {
    if (this.timer === undefined) return;
    clearTimeout(this.timer as NodeJS.Timeout);
    clearImmediate(this.timer as NodeJS.Immediate);
    this.timer = undefined;
  }

  private runNext(): void {
    this.timer = undefined;
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
  done: (result: DecodeResult, job: DecodeJob) => void;
}

/**
 * Decodes in worker threads (default one: the main thread keeps receiving). Each worker gets up
 * to `depth` jobs at once (default 2): a turn is granted while a worker has room, so the next
 * block's symbols are gathered and posted while the current one decodes, and the worker never
 * waits for the main thread between blocks. Memory: one more gathered block (K*T bytes) per worker.
 */
export class WorkerDecoder implements DecodeExecutor {
  private readonly all: Worker[] = [];
  /** Turns requested and not yet granted. */
  private readonly queue: (() => void)[] = [];
  /** Jobs posted to each worker, oldest first (a worker answers in order). */
  private readonly posted = new Map<Worker, Posted[]>();
  private readonly depth: number;
  private closed = false;
  /** A job buffer back from the worker, for the next gather. */
  private readonly spare: ArrayBuffer[] = [];
  private holding = false;
  private pumping = false;
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

  request(turn: () => void): void {
    if (this.closed) return;
    this.queue.push(turn);
    this.pump();
  }

  /** The least loaded worker, and whether it has room for another job. */
  private leastLoaded(): { worker: Worker; jobs: Posted[]; room: boolean } {
    let best: { worker: Worker; jobs: Posted[] } | undefined;
    for (const [worker, jobs] of this.posted) if (!best || jobs.length < best.jobs.length) best = { worker, jobs };
    const b = best as { worker: Worker; jobs: Posted[] };
    return { ...b, room: b.jobs.length < this.depth };
  }

  private pump(): void {
    if (this.pumping) return;
    this.pumping = true;
    try {
      // A granted turn may post nothing (its block needs no decode any more): grant the next.
      while (this.queue.length > 0 && !this.holding && !this.closed && this.leastLoaded().room) (this.queue.shift() as () => void)();
    } finally {
      this.pumping = false;
    }
  }

  decode(job: DecodeJob, done: (result: DecodeResult, job: DecodeJob) => void): void {
    if (this.closed) return;
    const { worker, jobs } = this.leastLoaded();
    jobs.push({ job, done });
    worker.postMessage(job, [job.symbols.buffer as ArrayBuffer]);
  }

  buffer(bytes: number): Uint8Array {
    const i = this.spare.findIndex((b) => b.byteLength >= bytes && b.byteLength <= bytes * 2);
    const buf = i >= 0 ? (this.spare.splice(i, 1)[0] as ArrayBuffer) : new ArrayBuffer(bytes);
    return new Uint8Array(buf, 0, bytes);
  }

  private onMessage(w: Worker, msg: WorkerReply): void {
    const b = this.posted.get(w)?.shift();
    if (this.closed || !b) return;
    // Turns requested by `done` (a retry, the next block) are granted after it returns, into the
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
