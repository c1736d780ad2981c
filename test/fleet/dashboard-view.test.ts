// What the dashboard shows (src/fleet/dashboard/view.ts) from a real collector fed real signed
// reports, and the listening options it refuses. The browser test (dashboard.test.ts) covers the
// page and the HTTP side in the lab.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ErrorCode, UsageError } from '../../src/errors.js';
import { signBeacon } from '../../src/announce/sign.js';
import { privateKeyFromSeed, signingKeyFrom } from '../../src/crypto/keys.js';
import { TrustStore } from '../../src/crypto/trust.js';
import { Collector } from '../../src/fleet/collector.js';
import { DeviceIdentity } from '../../src/fleet/identity.js';
import { Registry } from '../../src/fleet/registry.js';
import { Dashboard, checkDashboardOptions, generateToken, isLoopback } from '../../src/fleet/dashboard/server.js';
import { rollout, snapshot } from '../../src/fleet/dashboard/view.js';
import { body as statusBody, type Body } from './fixtures.js';

const MAIN = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));

const body = (deviceId: string, over: Partial<Body> = {}): Body => statusBody(deviceId, { reason: 'change', ...over });

test('rollout per release: installed, in progress, failed, not yet, quiet; unknown devices never counted', () => {
  const dir = mkdtempSync(join(tmpdir(), 'iotupd-dash-view-'));
  try {
    const ids = Array.from({ length: 7 }, (_, i) => DeviceIdentity.open(join(dir, `d${i}`), { reserve: 10 }));
    const reg = new Registry();
    for (let i = 0; i < 6; i++) reg.enrol(`dev-${i}`, (ids[i] as DeviceIdentity).publicKey);
    let t = 1_000_000;
    const c = new Collector({ product: 'sensor', registry: reg, now: () => t, quietAfterMs: 10_000 });
    const seal = (i: number, over: Partial<Body>): void => {
      const id = i === 6 ? 'stranger' : `dev-${i}`;
      assert.equal(c.ingest((ids[i] as DeviceIdentity).seal(body(id, over))).accepted, true);
    };
    const pending = { pendingVersion: '1.1.0', pendingSequence: 4n };
    seal(0, { state: 'installed', installedVersion: '1.1.0', installedSequence: 4n });
    seal(1, { state: 'receiving', progress: 0.3, ...pending });
    seal(2, { state: 'confirming', ...pending });
    seal(3, { state: 'rolled-back', lastError: 'boot check failed', ...pending });
    seal(4, { state: 'idle' });
    seal(5, { state: 'receiving', ...pending }); // goes quiet below
    // Not enrolled, claims a newer release: shown as unknown, adds no release and no count.
    seal(6, { state: 'installed', installedVersion: '9.9.9', installedSequence: 99n });
    t += 5_000;
    for (const i of [0, 1, 2, 3, 4]) seal(i, { reason: 'heartbeat', ...(i === 0 ? { state: 'installed', installedVersion: '1.1.0', installedSequence: 4n } : i === 4 ? {} : { state: (['receiving', 'confirming', 'rolled-back'] as const)[i - 1], ...pending, ...(i === 3 ? { lastError: 'boot check failed' } : {}) }) });
    t += 6_000; // dev-5 last heard 11 s ago: quiet
    const rows = rollout(c.devices());
    assert.deepEqual(
      rows.map((r) => [r.sequence, r.version, r.installed, r.inProgress, r.failed, r.notYet, r.quiet, r.total]),
      [
        ['4', '1.1.0', 1, 3, 1, 1, 1, 6],
        ['3', '1.0.0', 6, 0, 0, 0, 0, 6],
      ],
    );
    const s = snapshot(c, t);
    assert.deepEqual(s.failed.map((d) => [d.deviceId, d.lastError]), [['dev-3', 'boot check failed']]);
    assert.deepEqual(s.quiet.map((d) => [d.deviceId, d.state]), [['dev-5', 'receiving']]);
    assert.deepEqual(s.unknown.map((d) => [d.deviceId, d.trusted]), [['stranger', false]]);
    assert.equal(s.devices.length, 6);
    assert.deepEqual(s.devices.slice(0, 2).map((d) => d.health), ['failed', 'quiet']);
    assert.equal(s.summary.unknown, 1);
    assert.deepEqual(s.summary.versions, [
      { version: '1.0.0', count: 5 },
      { version: '1.1.0', count: 1 },
    ]);
    // JSON all the way: u64 values as decimal strings.
    assert.equal(s.devices.find((d) => d.deviceId === 'dev-1')?.pendingSequence, '4');
    assert.doesNotThrow(() => JSON.stringify(s));
    // The limit caps each list and says how many were left out.
    const small = snapshot(c, t, 2);
    assert.equal(small.devices.length, 2);
    assert.equal(small.omitted.devices, 4);
    void c.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the publisher column: its word merged into the rollout by sequence, rows for releases no device names, text as given', () => {
  const dir = mkdtempSync(join(tmpdir(), 'iotupd-dash-view-'));
  try {
    const T0 = 1_790_000_000;
    const key = signingKeyFrom(privateKeyFromSeed(createHash('sha256').update('dash view publisher').digest()));
    const ids = Array.from({ length: 2 }, (_, i) => DeviceIdentity.open(join(dir, `d${i}`), { reserve: 10 }));
    const reg = new Registry();
    ids.forEach((id, i) => reg.enrol(`dev-${i}`, id.publicKey));
    let t = T0 * 1000;
    const c = new Collector({ product: 'sensor', registry: reg, trust: new TrustStore([key]), now: () => t, quietAfterMs: 10_000 });
    assert.ok(c.ingest((ids[0] as DeviceIdentity).seal(body('dev-0', { state: 'installed', installedVersion: '1.1.0', installedSequence: 4n }))).accepted);
    assert.ok(c.ingest((ids[1] as DeviceIdentity).seal(body('dev-1'))).accepted);
    let counter = 1n;
    const demand = { live: 2, needing: 0, received: 1, waiting: 0, outside: 1, gaveUp: 0 };
    const say = (sequence: bigint, state: 'serving' | 'paused', reason: string, version = `${sequence}.x`, manifest = `m${sequence}`): void => {
      const manifestId = new Uint8Array(createHash('sha256').update(manifest).digest());
      const r = c.ingest(signBeacon({ kind: 'state', counter: (counter += 1n), issuedAt: T0, expires: T0 + 600, product: 'sensor', sequence, manifestId, state, version, demand, reason }, key));
      assert.ok(r.accepted, JSON.stringify(r, (_k, v: unknown) => (typeof v === 'bigint' ? String(v) : v)));
    };
    const evil = '<img src=x onerror="window.__pwned=1"> paused';
    say(4n, 'paused', evil, 'publisher name of 4');
    say(6n, 'serving', '1 of 2 devices heard need it', '6.0.0');
    t += 1000;
    const rows = snapshot(c, t).rollout;
    assert.deepEqual(
      rows.map((r) => [r.sequence, r.version, r.installed, r.notYet, r.publisher?.current ?? null, r.publisher?.reason ?? null, r.publisherManifests]),
      [
        ['6', '6.0.0', 0, 2, 'serving', '1 of 2 devices heard need it', 1],
        ['4', '1.1.0', 1, 1, 'paused', evil, 1],
        ['3', '1.0.0', 2, 0, null, null, 0],
      ],
      'merged by sequence: the devices name 4, only the publisher names 6; the reason is kept verbatim',
    );
    const p4 = rows[1]?.publisher;
    assert.deepEqual(p4?.demand, demand);
    assert.equal(p4?.version, 'publisher name of 4');
    assert.equal(p4?.heard, 'ok');
    assert.match(p4?.manifestId ?? '', /^[0-9a-f]{64}$/);
    assert.equal(p4?.signerKeyId, Buffer.from(key.keyId).toString('hex'));
    // Two manifests under one sequence: the row shows the word heard last and says how many.
    t += 1000;
    say(6n, 'paused', 'other manifest', '6.0.1', 'm6-other');
    const s = snapshot(c, t);
    assert.deepEqual([s.rollout[0]?.publisher?.reason, s.rollout[0]?.publisherManifests], ['other manifest', 2]);
    assert.equal(rollout(c.devices(t), [...c.releases(t)].reverse())[0]?.publisher?.reason, 'other manifest', 'whatever the order given');
    assert.deepEqual(
      s.releases.map((r) => [r.sequence, r.state]),
      [
        ['6', 'paused'],
        ['6', 'serving'],
        ['4', 'paused'],
      ],
    );
    assert.equal(s.omitted.releases, 0);
    assert.deepEqual(s.summary.releases, { serving: 1, paused: 2, unknown: 0 });
    // The publisher quiet: shown as unknown, the last word kept beside it.
    t += 10_001;
    const quiet = snapshot(c, t).rollout.find((r) => r.sequence === '4')?.publisher;
    assert.deepEqual([quiet?.current, quiet?.state, quiet?.heard], ['unknown', 'paused', 'quiet']);
    assert.doesNotThrow(() => JSON.stringify(snapshot(c, t)));
    assert.equal(snapshot(c, t, 1).omitted.releases, 2);
    void c.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('listening options: a token off loopback, a valid port, an IP literal, a URL-safe token', () => {
  const usage = (f: () => unknown, re: RegExp, code: string = ErrorCode.USAGE): void =>
    assert.throws(f, (e: unknown) => e instanceof UsageError && e.code === code && re.test(e.message));
  assert.deepEqual(checkDashboardOptions({}), { bind: '127.0.0.1', port: 8421 });
  assert.deepEqual(checkDashboardOptions({ bind: '::1', port: 0 }), { bind: '::1', port: 0 });
  usage(() => checkDashboardOptions({ bind: '0.0.0.0' }), /needs a token/);
  usage(() => checkDashboardOptions({ bind: 'fd00::2' }), /needs a token/);
  assert.equal(checkDashboardOptions({ bind: 'fd00::2', token: generateToken() }).bind, 'fd00::2');
  usage(() => checkDashboardOptions({ port: 65_536 }), /port/, ErrorCode.BAD_PORT);
  usage(() => checkDashboardOptions({ port: 80.5 }), /port/, ErrorCode.BAD_PORT);
  usage(() => checkDashboardOptions({ bind: 'localhost' }), /IPv4 or IPv6/, ErrorCode.BAD_BIND_ADDRESS);
  usage(() => checkDashboardOptions({ token: 'short' }), /token/);
  usage(() => checkDashboardOptions({ token: 'a'.repeat(20) + '"<' }), /token/);
  assert.ok(isLoopback('127.0.0.1') && isLoopback('127.5.0.1') && isLoopback('::1') && isLoopback('::ffff:127.0.0.1'));
  assert.ok(!isLoopback('0.0.0.0') && !isLoopback('::') && !isLoopback('10.0.0.1') && !isLoopback('::ffff:10.0.0.1'));
  const a = generateToken();
  assert.match(a, /^[A-Za-z0-9_-]{32}$/);
  assert.notEqual(a, generateToken());
  // The class applies the same checks before anything listens.
  const c = new Collector({ product: 'sensor' });
  try {
    usage(() => new Dashboard({ collector: c, bind: '192.0.2.1' }), /needs a token/);
  } finally {
    void c.close();
  }
});

test('iotupd dashboard with bad input: one line, exit 2, no database created', () => {
  const dir = mkdtempSync(join(tmpdir(), 'iotupd-dash-cli-'));
  try {
    const db = join(dir, 'fleet.db');
    const cases: [string[], RegExp][] = [
      [['--db', db], /--product P is required/],
      [['--product', 'p'], /give --interface IF to listen, or --db FILE/],
      [['--product', 'p', '--db', db, '--port', '65536'], /--port must be a number from 0 to 65535, got '65536'/],
      [['--product', 'p', '--db', db, '--port', '8.5'], /--port must be an integer, got '8\.5'/],
      [['--product', 'p', '--db', db, '--bind', 'example.org'], /bind address must be an IPv4 or IPv6 address, got 'example\.org'/],
      [['--product', 'p', '--db', db, '--bind', '192.0.2.1', '--token', 'tooshort'], /token must be 16 to 256 characters/],
      [['--product', 'p', '--db', db, 'extra'], /unexpected argument 'extra'/],
    ];
    for (const [args, says] of cases) {
      const r = spawnSync(process.execPath, [MAIN, 'dashboard', ...args], { encoding: 'utf8', timeout: 20_000 });
      const what = `iotupd dashboard ${args.join(' ')}`;
      assert.equal(r.status, 2, `${what}: exit ${String(r.status)}, stderr ${r.stderr}`);
      const lines = r.stderr.trimEnd().split('\n');
      assert.equal(lines.length, 1, `${what}: ${r.stderr}`);
      assert.match(lines[0] as string, says, what);
      assert.equal(r.stdout, '', what);
      assert.equal(existsSync(db), false, `${what}: created the database`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
