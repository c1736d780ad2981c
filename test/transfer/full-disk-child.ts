// Child process of the full-disk test: runs inside a private mount namespace where argv[2] is a
// tiny tmpfs, receives an object larger than it, and prints what happened as one JSON line.
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { makeObject, newSender } from './sim.js';
import { FileStore, FountainReceiver } from '../../src/transfer/receiver/index.js';
import { IotupdError } from '../../src/errors.js';

const dir = process.argv[2] as string;
const obj = makeObject(300_000, 256, 200, 5);
const sender = newSender(obj);
const out = join(dir, 'o.bin');
let code = 'none';
try {
  const r = new FountainReceiver({ store: new FileStore({ out }) });
  let now = 0;
  for (let i = 0; i < 5000; i++) {
    const s = sender.next(now);
    if ('done' in s) break;
    if ('wait' in s) {
      now += s.wait;
      continue;
    }
    if (r.push(s.datagram) === 'complete') break;
  }
} catch (err) {
  code = err instanceof IotupdError ? err.code : `unexpected: ${String(err)}`;
}
console.log(JSON.stringify({ code, outExists: existsSync(out), files: readdirSync(dir) }));
