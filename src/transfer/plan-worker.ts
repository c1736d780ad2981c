// Worker thread of recordEncoderPlans (src/transfer/plans.ts): records the RaptorQ encoder plans
// for the K' values it is given and posts them back (their operation buffers transferred).
import { parentPort, workerData } from 'node:worker_threads';
import { blockParams, encoderPlan } from '../fec/index.js';
import type { RecordedPlan } from './plans.js';

const ks = workerData as number[];
const plans: RecordedPlan[] = ks.map((k) => {
  const bp = blockParams(k);
  const r = encoderPlan(bp);
  return { kPrime: bp.kPrime, ops: r.plan.ops, length: r.plan.length, layout: r.layout, inactive: r.inactive };
});
parentPort?.postMessage(plans, plans.map((p) => p.ops.buffer as ArrayBuffer));
