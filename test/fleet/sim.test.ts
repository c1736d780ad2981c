// The fleet simulation (bench/fleet-sim.ts) at a small scale: real signing, verification and
// SQLite, a virtual clock. Checks the rate budget and that a rollout shows in full.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { simulate } from '../../bench/fleet-sim.js';

test('200 devices, steady state then a rollout: within budget, every report accepted, every device ends installed or failed', () => {
  const budget = { bitsPerSecond: 8_000, fleetSize: 200, minIntervalMs: 5_000, burst: 3, jitter: 0.25, heartbeatShare: 0.75 };
  const r = simulate({ devices: 200, steadyMinutes: 5, rolloutMinutes: 10, budget, failRate: 0.05, seed: 3 });
  assert.ok(r.reports > 1000, `${r.reports} reports`);
  assert.equal(r.accepted, r.reports);
  assert.equal(r.dropped, 0);
  // H from the formula: 200 devices x (report + 48) bytes x 8 / 8 kbit/s, about 45 s.
  assert.ok(r.heartbeatMs > 40_000 && r.heartbeatMs < 50_000, `H ${r.heartbeatMs}`);
  // Idle heartbeats use their share (0.75) of the budget; the rollout's changes fit in the rest.
  assert.ok(r.bpsSteady <= r.budgetBps * 0.85 && r.bpsSteady > r.budgetBps * 0.65, `steady ${r.bpsSteady} bit/s`);
  assert.ok(r.bpsMean <= r.budgetBps, `mean ${r.bpsMean} bit/s`);
  const done = (r.finalStates.installed ?? 0) + (r.finalStates.failed ?? 0);
  assert.equal(done, 200, JSON.stringify(r.finalStates));
  assert.ok((r.finalStates.failed ?? 0) > 0);
  assert.equal(r.versions.reduce((n, v) => n + v.count, 0), 200);
  assert.equal(r.versions.find((v) => v.version === '1.5.0')?.count, r.finalStates.installed);
  // Changes show within about one heartbeat interval plus the burst.
  assert.ok(r.showMs.changes > 1000, `${r.showMs.changes} changes`);
  assert.ok(r.showMs.max <= 1.5 * r.heartbeatMs, `max ${r.showMs.max} ms vs H ${r.heartbeatMs}`);
  assert.ok(r.showMs.p50 < r.showMs.p95);
  assert.equal(r.quietAtEnd, 0);
});
