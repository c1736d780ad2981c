// Records a sender's RaptorQ encoder plans in a worker thread while its main thread hashes the
// object. A plan depends on K' only (src/fec/encoder.ts); recording it is a solve of a hundred
// milliseconds or so when the solver is cold, which on the main thread would stall the pacer early
// in the source round (docs/protocol.md "Sender", docs/decisions/0004-encoders-prepared-in-slices.md).
import { Worker } from 'node:worker_threads';
import type { SlotLayout } from '../fec/solver.js';
import { adoptEncoderPlan, blockParams, hasEncoderPlan } from '../fec/index.js';

/** One plan as the worker posts it. */
export interface RecordedPlan {
  kPrime: number;
  ops: Int32Array;
  length: number;
  layout: SlotLayout;
  inactive: number;
}

export interface PlanRecording {
  /** Resolves once the plans are in this thread's cache, or the worker failed (then the sender records them itself). */
  readonly done: Promise<void>;
  /** Plans the worker recorded and this thread took. */
  readonly adopted: number;
  /** Stops the worker (its plans are then not used). */
  cancel(): void;
}

/** Starts recording the encoder plans of blocks of these K values (those not cached yet). */
export function recordEncoderPlans(ks: readonly number[]): PlanRecording {
  const todo = [...new Set(ks.map((k) => blockParams(k).kPrime))].filter((kp) => !hasEncoderPlan(kp));
  if (todo.length === 0) return { done: Promise.resolve(), adopted: 0, cancel: () => {} };
  const worker = new Worker(new URL('./plan-worker.js', import.meta.url), { workerData: todo });
  worker.unref();
  let settle: () => void = () => {};
  const done = new Promise<void>((resolve) => {
    settle = resolve;
  });
  let cancelled = false;
  const recording = {
    done,
    adopted: 0,
    cancel: () => {
      cancelled = true;
      settle();
      void worker.terminate();
    },
  };
  worker.once('message', (plans: RecordedPlan[]) => {
    if (!cancelled) {
      // A plan this thread recorded meanwhile (an encoder due before the worker was done) stays.
      for (const p of plans) if (adoptEncoderPlan(p.kPrime, { plan: { ops: p.ops, length: p.length }, layout: p.layout, inactive: p.inactive })) recording.adopted += 1;
    }
    settle();
    void worker.terminate();
  });
  worker.once('error', () => settle());
  worker.once('exit', () => settle());
  return recording;
}
