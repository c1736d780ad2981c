import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ErrorCode, UsageError } from '../../src/errors.js';
import { DeviceIdentity, COUNTER_FILE, KEY_PREFIX } from '../../src/fleet/identity.js';
import { heartbeatInterval, quietAfter, StatusReporter, type DeviceSnapshot } from '../../src/fleet/reporter.js';
import { decode, encodingLength, IP_UDP_OVERHEAD, verify } from '../../src/wire/status.js';
import { prng } from '../support/prng.js';

const SNAP: DeviceSnapshot = {
  deviceId: 'dev-0001',
  product: 'sensor',
  deviceClass: 'v2',
  installedVersion: '1.0.0',
  installedSequence: 10n,
  state: 'idle',
  agentVersion: '0.1.0',
};

test('heartbeat interval: max(min, fleet x wire bytes x 8 / budget)', () => {
  // 10,000 devices, 175-byte reports + 48 header bytes, 256 kbit/s: 10000 * 223 * 8 / 256000 s.
  assert.equal(heartbeatInterval({ bitsPerSecond: 256_000, fleetSize: 10_000 }, 175), (10_000 * 223 * 8 * 1000) / 256_000);
  assert.equal(heartbeatInterval({ bitsPerSecond: 256_000, fleetSize: 10, minIntervalMs: 30_000 }, 175), 30_000);
  assert.equal(quietAfter({ bitsPerSecond: 1e9, fleetSize: 1, minIntervalMs: 1000, jitter: 0.25, heartbeatShare: 1 }), 3750);
  assert.equal(quietAfter({ bitsPerSecond: 1e9, fleetSize: 1, minIntervalMs: 1000, jitter: 0.25, heartbeatShare: 0.5 }), 7500);
  assert.throws(() => heartbeatInterval({ heartbeatShare: 0 }, 100), UsageError);
  assert.throws(() => heartbeatInterval({ bitsPerSecond: 0 }, 100), UsageError);
  assert.throws(() => heartbeatInterval({ fleetSize: 0.5 }, 100), UsageError);
});

test('first snapshot is a start report at once; then heartbeats within (H / share) x (1 +- jitter)', () => {
  const r = new StatusReporter({ budget: { bitsPerSecond: 100_000, fleetSize: 1000, minIntervalMs: 1000, jitter: 0.25, heartbeatShare: 0.75 }, random: prng(1) });
  assert.equal(r.next(0), undefined, 'nothing before the first snapshot');
  assert.equal(r.changed(SNAP, 0), true);
  const first = r.next(0);
  assert.equal(first?.reason, 'start');
  const H = r.intervalMs;
  const bytes = encodingLength({ ...(first as NonNullable<typeof first>), counter: 0n, publicKey: new Uint8Array(32) });
  assert.equal(H, (1000 * (bytes + IP_UDP_OVERHEAD) * 8 * 1000) / 100_000);
  const B = H / 0.75;
  let last = 0;
  const gaps: number[] = [];
  for (let t = 1; t < B * 40; t += 10) {
    const due = r.next(t);
    if (due) {
      assert.equal(due.reason, 'heartbeat');
      gaps.push(t - last);
      last = t;
    }
  }
  assert.ok(gaps.length >= 30, `${gaps.length} heartbeats`);
  for (const g of gaps) assert.ok(g >= B * 0.75 - 10 && g <= B * 1.25 + 10, `gap ${g} vs H / share ${B}`);
  assert.ok(Math.max(...gaps) - Math.min(...gaps) > B * 0.2, 'jitter spreads heartbeats');
  const mean = gaps.reduce((a, b) => a + b, 0) / gaps.length;
  assert.ok(Math.abs(mean - B) < B * 0.1, `mean gap ${mean} vs ${B}`);
});

test('changes go out at once while tokens last, then coalesce; progress alone is no change', () => {
  const r = new StatusReporter({ budget: { bitsPerSecond: 1e6, fleetSize: 1, minIntervalMs: 10_000, burst: 3 }, random: prng(2) });
  r.changed(SNAP, 0);
  assert.equal(r.next(0)?.reason, 'start');
  assert.equal(r.changed({ ...SNAP, state: 'receiving', progress: 0 }, 1), true);
  assert.equal(r.next(1)?.state, 'receiving');
  assert.equal(r.changed({ ...SNAP, state: 'receiving', progress: 0.3 }, 2), false, 'progress only');
  assert.equal(r.next(2), undefined);
  assert.equal(r.changed({ ...SNAP, state: 'verifying' }, 3), true);
  assert.equal(r.next(3)?.state, 'verifying');
  // Bucket (3) empty now: two more changes coalesce into one report carrying the latest state.
  r.changed({ ...SNAP, state: 'installing' }, 4);
  r.changed({ ...SNAP, state: 'rebooting' }, 5);
  assert.equal(r.next(5), undefined);
  const at = r.wakeAt(5);
  assert.ok(at > 5 && at <= 10_000 + 5, `wake at ${at}`);
  assert.equal(r.next(at - 1), undefined);
  const late = r.next(at);
  assert.equal(late?.state, 'rebooting');
  assert.equal(late?.reason, 'change');
});

test('rate bound: over any window T a device sends at most burst + T / H reports, even when changing constantly', () => {
  const burst = 3;
  const r = new StatusReporter({ budget: { bitsPerSecond: 50_000, fleetSize: 100, minIntervalMs: 100, burst }, random: prng(3) });
  const states = ['idle', 'receiving', 'verifying', 'installing'] as const;
  const sent: number[] = [];
  for (let t = 0; t < 600_000; t += 50) {
    r.changed({ ...SNAP, state: states[(t / 50) % 4] as (typeof states)[number] }, t);
    if (r.next(t)) sent.push(t);
  }
  const H = r.intervalMs;
  assert.ok(sent.length > 10);
  for (const T of [H, 5 * H, 20 * H]) {
    for (let i = 0; i < sent.length; i++) {
      let n = 0;
      for (let j = i; j < sent.length && (sent[j] as number) < (sent[i] as number) + T; j++) n += 1;
      assert.ok(n <= burst + T / H + 1e-9, `${n} reports in a window of ${T} ms (H ${H})`);
    }
  }
  // The long-run rate is the budget's: about one report per H.
  assert.ok(Math.abs(sent.length - 600_000 / H) <= burst + 1, `${sent.length} reports, expected ~${600_000 / H}`);
});

test('bad snapshots are a UsageError; an over-long error text is cut, not refused', () => {
  const r = new StatusReporter();
  assert.throws(() => r.changed({ ...SNAP, state: 'exploded' as never }, 0), UsageError);
  assert.throws(() => r.changed({ ...SNAP, deviceId: 'x'.repeat(65) }, 0), UsageError);
  r.changed({ ...SNAP, lastError: 'é'.repeat(200) }, 0);
  const due = r.next(0);
  assert.equal(due?.lastError, 'é'.repeat(80));
});

test('identity: key created 0600 at first start and reused; counter strictly increasing across restarts', () => {
  const dir = mkdtempSync(join(tmpdir(), 'iotupd-fleet-id-'));
  try {
    const a = DeviceIdentity.open(dir, { reserve: 5, now: () => 0 });
    assert.equal(statSync(join(dir, `${KEY_PREFIX}.key`)).mode & 0o777, 0o600);
    const seen: bigint[] = [];
    for (let i = 0; i < 12; i++) seen.push(a.nextCounter());
    // A restart (clock at 0: no help from the wall clock) continues above everything used.
    const b = DeviceIdentity.open(dir, { reserve: 5, now: () => 0 });
    assert.deepEqual(b.publicKey, a.publicKey);
    for (let i = 0; i < 12; i++) seen.push(b.nextCounter());
    for (let i = 1; i < seen.length; i++) assert.ok((seen[i] as bigint) > (seen[i - 1] as bigint), `counter ${seen[i]} after ${seen[i - 1]}`);
    // Reservations: the file is written once per 5 values, and holds the ceiling.
    assert.match(readFileSync(join(dir, COUNTER_FILE), 'utf8'), /^iotupd status counter v1 \d+\n[0-9a-f]{64}\n$/);
    // The sealed report verifies under the device's key and carries its counter.
    const bytes = b.seal({ reason: 'heartbeat', time: 1, uptime: 1, state: 'idle', installedSequence: 1n, deviceId: 'd', product: 'p', deviceClass: '', installedVersion: '1', agentVersion: '0' });
    assert.ok(verify(bytes, b.publicKey));
    assert.equal(decode(bytes).counter, b.lastCounter);
    // The wall clock is a floor after a lost counter file.
    const c = DeviceIdentity.open(dir, { now: () => 1_764_979_200_000 });
    assert.equal(c.nextCounter(), 1_764_979_200_000n * 1000n);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('identity: a corrupt counter file and a key readable by others are refused', () => {
  const dir = mkdtempSync(join(tmpdir(), 'iotupd-fleet-id-'));
  try {
    DeviceIdentity.open(dir).nextCounter();
    writeFileSync(join(dir, COUNTER_FILE), 'iotupd status counter v1 5\nbad\n');
    assert.throws(() => DeviceIdentity.open(dir), (e: unknown) => (e as { code?: string }).code === ErrorCode.STATE_CORRUPT);
    rmSync(join(dir, COUNTER_FILE));
    chmodSync(join(dir, `${KEY_PREFIX}.key`), 0o644);
    assert.throws(() => DeviceIdentity.open(dir), (e: unknown) => (e as { code?: string }).code === ErrorCode.KEY_PERMS);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('importing iotupd/fleet does not load the SQLite addon; opening a collector does', () => {
  const index = new URL('../../src/fleet/index.js', import.meta.url).href;
  const script = `
    import { createRequire } from 'node:module';
    const fleet = await import(${JSON.stringify(index)});
    const req = createRequire(import.meta.url);
    const loaded = () => Object.keys(req.cache).some((k) => k.includes('better-sqlite3') || k.endsWith('better_sqlite3.node'));
    const before = loaded();
    const c = new fleet.Collector({ product: 'p' });
    const after = loaded();
    await c.close();
    console.log(JSON.stringify({ before, after }));`;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  assert.deepEqual(JSON.parse(r.stdout), { before: false, after: true });
});
