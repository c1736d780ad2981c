// Worker thread of WorkerDecoder (src/transfer/decoding.ts): decodes one block per message.
import { parentPort } from 'node:worker_threads';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { runDecodeJob, type DecodeJob, type WorkerReply } from './decoding.js';

// A decode leaves a few K*T-sized dead buffers in this isolate (the job's symbols, young objects
// holding external memory): a scavenge after each block keeps the thread's memory at one block's
// working set. Not a full collection: that costs far more and makes the next decodes several
// times slower (docs/decisions/0007-receiver-memory-bounds.md).
let gc: ((opts: { type: 'minor' }) => void) | undefined;
try {
  setFlagsFromString('--expose-gc');
  const f = runInNewContext('gc') as unknown;
  if (typeof f === 'function') gc = f as (opts: { type: 'minor' }) => void;
} catch {
  gc = undefined;
}

parentPort?.on('message', (job: DecodeJob) => {
  const buffer = job.symbols.buffer as ArrayBuffer;
  let reply: WorkerReply;
  try {
    const block = runDecodeJob(job);
    if (block) {
      // The block was decoded over the job's symbols, into the job's buffer, which goes back to
      // the main thread to be reused for another job.
      let out = block;
      if (block.buffer !== buffer) {
        out = new Uint8Array(buffer, 0, block.length);
        out.set(block);
      }
      reply = { ok: true, block: out, buffer };
    } else {
      reply = { ok: false, buffer };
    }
  } catch (err) {
    reply = { ok: false, buffer, error: err instanceof Error ? err.message : String(err) };
  }
  parentPort?.postMessage(reply, [buffer]);
  gc?.({ type: 'minor' });
});
