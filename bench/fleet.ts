// npm run bench:fleet — 10,000 devices' status traffic through the collector, with no network
// (bench/fleet-sim.ts): real Ed25519 signing and verification, the real Collector and its SQLite
// file. Prints the collector's CPU and memory, the channel's bits per second against the budget,
// and how long a state change takes to show. Figures only; nothing is asserted.
// Usage: node dist/bench/fleet.js [devices] (default 10000)
import { cpus, loadavg, totalmem } from 'node:os';
import { simulate } from './fleet-sim.js';

const devices = Number(process.argv[2] ?? 10_000);
if (!Number.isInteger(devices) || devices < 1) {
  console.error('usage: node dist/bench/fleet.js [devices]');
  process.exit(2);
}
const budget = { bitsPerSecond: 256_000, fleetSize: devices, minIntervalMs: 30_000, burst: 3, jitter: 0.25, heartbeatShare: 0.75 };
console.log(`fleet status simulation: ${devices} devices, budget ${budget.bitsPerSecond / 1000} kbit/s, burst ${budget.burst}, jitter ${budget.jitter}, heartbeat share ${budget.heartbeatShare}`);
console.log(`machine: ${cpus().length} cores, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.version}, load average ${loadavg().map((l) => l.toFixed(1)).join(' ')}`);
const r = simulate({ devices, steadyMinutes: 3, rolloutMinutes: 8, budget, failRate: 0.01, seed: 1, maxWallSeconds: 100 }, (s) => console.log(s));
const f = (n: number, d = 1): string => n.toFixed(d);
console.log(`
virtual time            ${r.virtualSeconds} s (3 min: start-up and idle heartbeats, then 8 min of a rollout: every device through 6 states within ~6.5 min)${r.truncatedAt !== undefined ? `\nSTOPPED EARLY at virtual ${r.truncatedAt} s (wall-time guard)` : ''}
share period H          ${f(r.heartbeatMs / 1000)} s (max(30 s, fleet x wire bytes x 8 / budget)); idle heartbeats every H / ${budget.heartbeatShare}
reports                 ${r.reports} (${r.accepted} accepted, ${r.dropped} dropped)
channel, idle           ${f(r.bpsSteady / 1000)} kbit/s (budget ${f(r.budgetBps / 1000)}; minutes 2-3)
channel, whole run      ${f(r.bpsMean / 1000)} kbit/s mean, ${f(r.bpsMax60s / 1000)} kbit/s in the busiest minute
change to shown         p50 ${f(r.showMs.p50 / 1000)} s, p95 ${f(r.showMs.p95 / 1000)} s, p99 ${f(r.showMs.p99 / 1000)} s, max ${f(r.showMs.max / 1000)} s (${r.showMs.changes} changes; virtual, rate limit only)
collector per report    ${f(r.collectorMsPerReport * 1000, 0)} us (decode, verify, replay check, SQLite write)
collector CPU           ${f(r.collectorCoreShare * 100, 2)} % of one core at the fleet's rate
device sign per report  ${f(r.signMsPerReport * 1000, 0)} us
process RSS at the end  ${f(r.rssMiB, 0)} MiB (the simulated devices' keys and reporters included)
publisher recount       ${f(r.publisherRecountMs, 1)} ms per release, once a second (the first, hashing each device's rollout position: ${f(r.publisherFirstRecountMs, 1)} ms); ${JSON.stringify(r.publisherRecount)}
restarted collector     loads ${devices} devices in ${f(r.restartLoadMs, 0)} ms, heap +${f(r.restartHeapMiB, 1)} MiB
database file           ${f(r.dbMiB, 1)} MiB
final states            ${JSON.stringify(r.finalStates)}
versions                ${JSON.stringify(r.versions)}
quiet at the end        ${r.quietAtEnd}
wall time               ${f(r.wallSeconds)} s`);
