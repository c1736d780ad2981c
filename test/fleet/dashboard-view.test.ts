// What the dashboard shows (src/fleet/dashboard/view.ts) from a real collector fed real signed
// reports, and the listening options it refuses. The browser test (dashboard.test.ts) covers the
// page and the HTTP side in the lab.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ErrorCode, UsageError } from '../../src/errors.js';
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
