// A publisher's STATE beacons as their own process, for the dashboard lab test
// (test/fleet/dashboard.test.ts): signed with a key file and sent on the product's status channel
// on a lab interface, as a publisher sends them. Not a test file itself.
//
//   node state-child.js --interface IF --product P --key SIGNER.key [--stranger STRANGER.key]
//        [--interval-ms N]
// Each stdin line is one JSON command:
//   {"sequence":"2","version":"2.0.0","state":"paused","reason":"...","demand":{...}}
//     sets what the publisher says of that release: sent at once, then every --interval-ms
//     (default 1000) with a fresh counter, as a publisher repeats it;
//   {"stranger":true,"sequence":"2",...} sends one beacon signed by the --stranger key instead.
// Prints {"event":"ready"} once the socket is open and {"event":"sent",...} per beacon sent on a
// command (not per repeat); runs until SIGTERM.
import { createHash } from 'node:crypto';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { signBeacon } from '../../src/announce/sign.js';
import { loadSigningKey, type SigningKey } from '../../src/crypto/keys.js';
import { resolveGroup } from '../../src/channel/resolve.js';
import { statusChannel } from '../../src/fleet/channel.js';
import { DEFAULT_PORT, McastSocket } from '../../src/net/socket.js';
import type { DemandCounts, ReleaseState } from '../../src/wire/beacon.js';

const { values: v } = parseArgs({
  options: {
    interface: { type: 'string' },
    product: { type: 'string' },
    key: { type: 'string' },
    stranger: { type: 'string' },
    'interval-ms': { type: 'string' },
  },
});
if (v.interface === undefined || v.product === undefined || v.key === undefined) {
  console.error('state-child: --interface, --product and --key are required');
  process.exit(2);
}
const product = v.product;
const signer = loadSigningKey(v.key);
const stranger = v.stranger === undefined ? undefined : loadSigningKey(v.stranger);
const group = resolveGroup({ channel: statusChannel(product) });
const sock = await McastSocket.open({ interface: v.interface, port: 0 });

interface Word {
  sequence: string;
  version: string;
  state: ReleaseState;
  reason: string;
  demand: DemandCounts;
  stranger?: boolean;
}

// Microseconds since the epoch, strictly increasing: the counter a publisher uses.
let counter = 0n;
function nextCounter(): bigint {
  const micros = BigInt(Date.now()) * 1000n;
  counter = micros > counter ? micros : counter + 1n;
  return counter;
}

async function send(w: Word, key: SigningKey): Promise<number> {
  const issuedAt = Math.floor(Date.now() / 1000);
  const bytes = signBeacon(
    {
      kind: 'state',
      counter: nextCounter(),
      issuedAt,
      expires: issuedAt + 600,
      product,
      sequence: BigInt(w.sequence),
      manifestId: new Uint8Array(createHash('sha256').update(`${product} release ${w.sequence}`).digest()),
      state: w.state,
      version: w.version,
      demand: w.demand,
      reason: w.reason,
    },
    key,
  );
  await sock.send(bytes, group, DEFAULT_PORT);
  return bytes.length;
}

const words = new Map<string, Word>();
const timer = setInterval(() => {
  for (const w of words.values()) void send(w, signer).catch((e: Error) => console.error(`state-child: ${e.message}`));
}, Number(v['interval-ms'] ?? 1000));

createInterface({ input: process.stdin }).on('line', (line) => {
  const w = JSON.parse(line) as Word;
  const key = w.stranger === true ? stranger : signer;
  if (key === undefined) {
    console.error('state-child: a stranger beacon needs --stranger');
    return;
  }
  if (w.stranger !== true) words.set(w.sequence, w);
  send(w, key).then(
    (bytes) => console.log(JSON.stringify({ event: 'sent', sequence: w.sequence, state: w.state, stranger: w.stranger === true, bytes })),
    (e: Error) => console.error(`state-child: ${e.message}`),
  );
});
console.log(JSON.stringify({ event: 'ready', group }));

const stop = (): void => {
  clearInterval(timer);
  void sock.close().then(() => process.exit(0));
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
