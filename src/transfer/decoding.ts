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
  /** count * symbolSize bytes, its own ArrayBuffer (transferable). */
  symbols: Uint8Array;
  count: number;
}

/** The decoded block (blockLength bytes), or undefined when the symbols do not determine it yet. */
export type DecodeResult = Uint8Array | undefined;

/**
 * Where block decodes run. The receiver core hands over a `gather` thunk (called when a decoder
 * is free, so queued blocks do not hold their symbols in memory) and gets `done` called later —
 * synchronously for `syncDecoder` (deterministic simulations), from another thread for
 * `WorkerDecoder` (the network driver: reception goes on while a block decodes, so the socket
 * buffer does not overflow during a decode).
 */
export interface DecodeExecutor {
  decode(gather: () => DecodeJob, done: (result: DecodeResult, job: DecodeJob) => void): void;
  close(): Promise<void>;
}

export function runDecodeJob(job: DecodeJob): DecodeResult {
  const dec = new BlockDecoder(job.k, job.symbolSize, job.blockLength, job.subBlocks, job.alignment);
  const T = job.symbolSize;
  for (let i = 0; i < job.count; i++) {
    if (dec.add(job.esis[i] as number, job.symbols.subarray(i * T, (i + 1) * T))) return dec.result();
  }
  return undefined;
}

export const syncDecoder: DecodeExecutor = {
  decode(gather, done) {
    const job = gather();
    done(runDecodeJob(job), job);
  },
  close: () => Promise.resolve(),
};

interface Pending {
  gather: () => DecodeJob;
  done: (result: DecodeResult, job: DecodeJob) => void;
}

/** Decodes in worker threads (default one: the main thread keeps receiving). */
export class WorkerDecoder implements DecodeExecutor {
  private readonly idle: Worker[] = [];
  private readonly all: Worker[] = [];
  private readonly queue: Pending[] = [];
  private readonly busy = new Map<Worker, { job: DecodeJob; done: Pending['done'] }>();
  private closed = false;
  /** Errors in a worker (e.g. it could not load): reported to the receiver through `onError`. */
  onError: ((err: Error) => void) | undefined;

  constructor(threads = 1) {
    for (let i = 0; i < Math.max(1, threads); i++) {
      const w = new Worker(new URL('./decode-worker.js', import.meta.url));
      w.unref();
      w.on('message', (msg: { ok: boolean; block?: Uint8Array; error?: string }) => this.onMessage(w, msg));
      w.on('error', (err) => this.onError?.(err));
      this.all.push(w);
      this.idle.push(w);
    }
  }

  decode(gather: () => DecodeJob, done: (result: DecodeResult, job: DecodeJob) => void): void {
    if (this.closed) return;
    this.queue.push({ gather, done });
    this.pump();
  }

  private pump(): void {
    while (this.idle.length > 0 && this.queue.length > 0) {
      const w = this.idle.pop() as Worker;
      const p = this.queue.shift() as Pending;
      const job = p.gather();
      this.busy.set(w, { job, done: p.done });
      w.postMessage(job, [job.symbols.buffer as ArrayBuffer]);
    }
  }

  private onMessage(w: Worker, msg: { ok: boolean; block?: Uint8Array; error?: string }): void {
    const b = this.busy.get(w);
    this.busy.delete(w);
    this.idle.push(w);
    if (this.closed || !b) return;
    if (msg.error !== undefined) this.onError?.(new Error(`decoder thread: ${msg.error}`));
    else b.done(msg.ok ? msg.block : undefined, b.job);
    this.pump();
  }

  async close(): Promise<void> {
    this.closed = true;
    this.queue.length = 0;
    await Promise.all(this.all.map((w) => w.terminate()));
  }
}
