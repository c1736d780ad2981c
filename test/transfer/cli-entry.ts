// Runs the fountain `send` / `recv` command functions as a process (used by the lab tests until
// and unless the main CLI registers them; the code under test is the same).
import { fountainRecv, fountainSend } from '../../src/transfer/cli.js';
import { IotupdError } from '../../src/errors.js';

const [cmd, ...rest] = process.argv.slice(2);
const ac = new AbortController();
for (const sig of ['SIGINT', 'SIGTERM'] as const) process.on(sig, () => ac.abort(new IotupdError('ERR_INTERRUPTED', `interrupted by ${sig}`)));
const fn = cmd === 'send' ? fountainSend : cmd === 'recv' ? fountainRecv : undefined;
if (!fn) {
  console.error('usage: cli-entry send|recv ...');
  process.exit(2);
}
fn(rest, ac.signal).then(
  (code) => (process.exitCode = code),
  (err: unknown) => {
    if (err instanceof IotupdError && err.code === 'ERR_INTERRUPTED') process.exitCode = 130;
    else {
      console.error(`iotupd: ${err instanceof Error ? err.message : String(err)}`);
      process.exitCode = 1;
    }
  },
);
