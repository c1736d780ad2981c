// A device's status reporter as its own process, for the lab test (test/fleet/lab.test.ts): the
// real FleetReporter on a lab interface. Not a test file itself.
//
//   node reporter-child.js --interface IF --state-dir DIR --device-id ID --product P
//        --state S --version V [--error TEXT] [--then STATE --then-version V --after-ms N]
//        [--min-interval-ms N] [--sequence N] [--pending-version V --pending-sequence N]
//        [--progress P] [--then-sequence N] [--then-error TEXT] [--then-keep-pending]
// --after-ms stdin: the change comes when a line arrives on stdin (the test decides when).
// Prints {"event":"ready",...} once the first report is sent, {"event":"sent",...} per report;
// runs until SIGTERM.
import { parseArgs } from 'node:util';
import { FleetReporter } from '../../src/fleet/index.js';
import type { AgentState } from '../../src/wire/status.js';

const { values: v } = parseArgs({
  options: {
    interface: { type: 'string' },
    'state-dir': { type: 'string' },
    'device-id': { type: 'string' },
    product: { type: 'string' },
    state: { type: 'string' },
    version: { type: 'string' },
    error: { type: 'string' },
    then: { type: 'string' },
    'then-version': { type: 'string' },
    'after-ms': { type: 'string' },
    'min-interval-ms': { type: 'string' },
    sequence: { type: 'string' },
    'pending-version': { type: 'string' },
    'pending-sequence': { type: 'string' },
    progress: { type: 'string' },
    'then-sequence': { type: 'string' },
    'then-error': { type: 'string' },
    'then-keep-pending': { type: 'boolean' },
  },
});
const need = (k: keyof typeof v): string => {
  const x = v[k];
  if (typeof x !== 'string') {
    console.error(`reporter-child: --${k} is required`);
    process.exit(2);
  }
  return x;
};

const product = need('product');
const reporter = await FleetReporter.open({
  interface: need('interface'),
  stateDir: need('state-dir'),
  product,
  // Small budget numbers so a test sees several heartbeats per second; the formula is the real one.
  budget: { bitsPerSecond: 10_000_000, fleetSize: 1, minIntervalMs: Number(v['min-interval-ms'] ?? 300), burst: 3 },
});
let first = true;
reporter.on('sent', (s) => {
  console.log(JSON.stringify({ event: first ? 'ready' : 'sent', reason: s.reason, counter: s.counter.toString(), bytes: s.bytes }));
  first = false;
});
reporter.on('error', (e) => console.error(`reporter-child: ${e.message}`));
const base = {
  deviceId: need('device-id'),
  product,
  deviceClass: 'lab',
  installedVersion: need('version'),
  installedSequence: BigInt(v.sequence ?? 1),
  state: need('state') as AgentState,
  agentVersion: '0.1.0',
  ...(v.error !== undefined ? { lastError: v.error } : {}),
  ...(v['pending-version'] !== undefined ? { pendingVersion: v['pending-version'], pendingSequence: BigInt(v['pending-sequence'] ?? 2) } : {}),
  ...(v.progress !== undefined ? { progress: Number(v.progress) } : {}),
};
reporter.update(base);
if (v.then !== undefined) {
  const { pendingVersion: _pv, pendingSequence: _ps, progress: _p, ...rest } = base;
  const then = {
    ...(v['then-keep-pending'] === true ? base : rest),
    state: v.then as AgentState,
    installedVersion: v['then-version'] ?? base.installedVersion,
    installedSequence: BigInt(v['then-sequence'] ?? 2),
    ...(v['then-error'] !== undefined ? { lastError: v['then-error'] } : {}),
  };
  if (v['after-ms'] === 'stdin') process.stdin.once('data', () => reporter.update(then));
  else setTimeout(() => reporter.update(then), Number(v['after-ms'] ?? 1000));
}
const stop = (): void => {
  void reporter.close().then(() => process.exit(0));
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
// The socket keeps the process alive; heartbeats come from the reporter's (unref'd) timer.
setInterval(() => {}, 1 << 30);
