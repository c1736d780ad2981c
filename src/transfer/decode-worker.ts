// Worker thread of WorkerDecoder (src/transfer/decoding.ts): decodes one block per message.
import { parentPort } from 'node:worker_threads';
import { runDecodeJob, type DecodeJob } from './decoding.js';

parentPort?.on('message', (job: DecodeJob) => {
  try {
    const block = runDecodeJob(job);
    if (block) {
      // Copy into a buffer of its own so that it can be transferred, not cloned.
      const out = block.byteOffset === 0 && block.byteLength === block.buffer.byteLength ? block : block.slice();
      parentPort?.postMessage({ ok: true, block: out }, [out.buffer as ArrayBuffer]);
    } else {
      parentPort?.postMessage({ ok: false });
    }
  } catch (err) {
    parentPort?.postMessage({ ok: false, error: err instanceof Error ? err.message : String(err) });
  }
});
