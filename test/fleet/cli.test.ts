// iotupd fleet and iotupd status --db, without a network: enrolment, approval, the table and
// JSON snapshot from a database the real Collector wrote, and one clear line for bad input.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Collector, type DeviceView, type FleetSummary } from '../../src/fleet/collector.js';
import { formatTable } from '../../src/cli/commands/status.js';
import { DeviceIdentity } from '../../src/fleet/identity.js';
import { toHex } from '../../src/crypto/bytes.js';
import { generateSigningKey, keyIdOf, saveKeyPair } from '../../src/crypto/keys.js';
import { TrustStore } from '../../src/crypto/trust.js';
import { signBeacon } from '../../src/announce/sign.js';

const MAIN = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));

function iotupd(...args: string[]): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [MAIN, ...args], { encoding: 'utf8' });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

const report = (id: DeviceIdentity, deviceId: string, state: 'idle' | 'failed' | 'installing', version = '1.0.0', lastError?: string): Uint8Array =>
  id.seal({ reason: 'change', time: 1, uptime: 1, state, installedSequence: 1n, deviceId, product: 'sensor', deviceClass: '', installedVersion: version, agentVersion: '0.1.0', ...(lastError ? { lastError } : {}) });

test('fleet enrol / approve / list, then status --db shows trusted, failed and unknown apart', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'iotupd-fleet-cli-'));
  try {
    const a = DeviceIdentity.open(join(dir, 'a'));
    const b = DeviceIdentity.open(join(dir, 'b'));
    const u = DeviceIdentity.open(join(dir, 'u'));
    const registry = join(dir, 'registry.txt');
    const db = join(dir, 'fleet.db');
    let r = iotupd('fleet', 'enrol', '--registry', registry, '--device-id', 'dev-a', '--key', a.publicKeyFile);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`dev-a: key ${toHex(keyIdOf(a.publicKey))} added`));
    r = iotupd('fleet', 'enrol', '--registry', registry, '--device-id', 'dev-b', '--key', b.publicKeyFile);
    assert.equal(r.code, 0, r.stderr);
    // Enrolling another key for dev-a is refused without --replace.
    r = iotupd('fleet', 'enrol', '--registry', registry, '--device-id', 'dev-a', '--key', b.publicKeyFile);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /^iotupd: device 'dev-a' is enrolled with another key/);

    const c = new Collector({ product: 'sensor', db, registry });
    assert.ok(c.ingest(report(a, 'dev-a', 'installing', '1.1.0')).accepted);
    assert.ok(c.ingest(report(b, 'dev-b', 'failed', '1.0.0', 'install: no space left')).accepted);
    assert.ok(c.ingest(report(u, 'dev-u', 'idle')).accepted);
    assert.equal(c.ingest(report(u, 'dev-a', 'idle', '6.6.6')).accepted, false, 'forged');
    await c.close();

    r = iotupd('status', '--product', 'sensor', '--db', db, '--registry', registry, '--json');
    assert.equal(r.code, 0, r.stderr);
    const snap = JSON.parse(r.stdout) as { summary: { trusted: number; unknown: number; drops: Record<string, number> }; devices: { deviceId: string; state: string; health: string }[]; unknown: { deviceId: string }[] };
    assert.deepEqual(
      snap.devices.map((d) => [d.deviceId, d.state, d.health]),
      [
        ['dev-a', 'installing', 'ok'],
        ['dev-b', 'failed', 'failed'],
      ],
    );
    assert.deepEqual(snap.unknown.map((d) => d.deviceId), ['dev-u']);
    assert.equal(snap.summary.drops.forged, 1);

    r = iotupd('status', '--product', 'sensor', '--db', db, '--registry', registry, '--table');
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /2 trusted \(ok 1, failed 1, quiet 0\), 1 unknown/);
    assert.match(r.stdout, /failed \(1\)\n.*\ndev-b +failed .*install: no space left/);
    assert.match(r.stdout, /unknown keys .*\(1\)\n.*\ndev-u +idle/);
    assert.match(r.stdout, /dropped: forged 1/);

    // Approve the unknown device's key as the database saw it; status then trusts it.
    r = iotupd('fleet', 'approve', '--registry', registry, '--db', db, '--device-id', 'dev-u');
    assert.equal(r.code, 0, r.stderr);
    assert.match(readFileSync(registry, 'utf8'), new RegExp(`^dev-u ${toHex(u.publicKey)}$`, 'm'));
    r = iotupd('status', '--product', 'sensor', '--db', db, '--registry', registry, '--json');
    const snap2 = JSON.parse(r.stdout) as { devices: { deviceId: string }[]; unknown: unknown[] };
    assert.deepEqual(snap2.devices.map((d) => d.deviceId), ['dev-a', 'dev-b', 'dev-u']);
    assert.equal(snap2.unknown.length, 0);
    r = iotupd('fleet', 'list', '--registry', registry);
    assert.equal(r.stdout.trim().split('\n').length, 3);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('status --db lists the publisher\'s releases under the table and in the JSON snapshot; --trust takes several files', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'iotupd-fleet-cli-'));
  try {
    const db = join(dir, 'fleet.db');
    const key = generateSigningKey();
    const { pubFile } = saveKeyPair(join(dir, 'publisher'), key);
    const { pubFile: otherPub } = saveKeyPair(join(dir, 'other'), generateSigningKey());
    const now = Math.floor(Date.now() / 1000);
    const c = new Collector({ product: 'sensor', db, trust: new TrustStore([key]) });
    const say = (sequence: bigint, state: 'serving' | 'paused', reason: string, counter: bigint): void => {
      const demand = { live: 3, needing: state === 'serving' ? 1 : 0, received: 2, waiting: 0, outside: 0, gaveUp: 0 };
      const bytes = signBeacon({ kind: 'state', counter, issuedAt: now, expires: now + 600, product: 'sensor', sequence, manifestId: new Uint8Array(32).fill(Number(sequence)), state, version: `${sequence}.0`, demand, reason }, key);
      assert.ok(c.ingest(bytes).accepted);
    };
    say(4n, 'serving', '1 of 3 devices heard need it', 1n);
    say(5n, 'paused', 'none of the 3 devices heard needs it\x1b[2J', 2n);
    await c.close();
    let r = iotupd('status', '--product', 'sensor', '--db', db, '--json', '--trust', `${otherPub},${pubFile}`, '--trust', pubFile);
    assert.equal(r.code, 0, r.stderr);
    const snap = JSON.parse(r.stdout) as { releases: { sequence: string; version: string; current: string; reason: string; demand: { needing: number } }[] };
    assert.deepEqual(
      snap.releases.map((x) => [x.sequence, x.version, x.current, x.demand.needing]),
      [
        ['5', '5.0', 'paused', 0],
        ['4', '4.0', 'serving', 1],
      ],
    );
    r = iotupd('status', '--product', 'sensor', '--db', db, '--table');
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /releases \(publisher, 2\)\n#5 +5\.0 +paused +none of the 3 devices heard needs it\\u001b\[2J\n#4 +4\.0 +serving +1 of 3 devices heard need it/);
    assert.ok(!r.stdout.includes('\x1b'), 'no control character from the publisher reaches the terminal');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('status and fleet: bad input gives one line on stderr and a non-zero exit', () => {
  const dir = mkdtempSync(join(tmpdir(), 'iotupd-fleet-cli-'));
  try {
    const junk = join(dir, 'junk.db');
    writeFileSync(junk, 'this is not a database');
    const badReg = join(dir, 'bad.reg');
    writeFileSync(badReg, 'dev-0 nothex\n');
    const cases: [string[], number, RegExp][] = [
      [['status'], 2, /--product P is required/],
      [['status', '--product', 'p'], 2, /--interface IF to listen, or --db/],
      [['status', '--product', 'p', '--interface', 'nosuch0'], 1, /no such network interface 'nosuch0'/],
      [['status', '--product', 'p', '--interface', 'nosuch0', '--listen', '-1'], 2, /--listen must be a number/],
      [['status', '--product', 'p', '--db', junk], 1, /database .*junk\.db/],
      [['status', '--product', 'p', '--db', join(dir, 'typo.db')], 2, /no database at .*typo\.db/],
      [['status', '--product', 'p', '--db', junk, '--registry', badReg], 1, /bad\.reg:1: key must be 64 hex digits/],
      [['status', '--product', 'p', '--interface', 'lo', '--trust', join(dir, 'none.pub')], 2, /no trust file at .*none\.pub/],
      [['status', '--product', 'p', '--interface', 'lo', '--trust', `${badReg},`], 2, /--trust needs a file name/],
      [['status', '--product', 'p', '--interface', 'lo', '--trust', badReg], 1, /bad\.reg/],
      [['status', '--product', 'a/b', '--interface', 'nosuch0'], 2, /product name 'a\/b'/],
      [['fleet'], 2, /sub-command is required/],
      [['fleet', 'enrol', '--registry', join(dir, 'r')], 2, /--device-id ID is required/],
      [['fleet', 'enrol', '--registry', join(dir, 'r'), '--device-id', 'has space', '--key', junk], 1, /no PEM block|device id/],
      [['fleet', 'approve', '--registry', join(dir, 'r'), '--device-id', 'x', '--db', join(dir, 'none.db')], 1, /cannot open database/],
    ];
    for (const [args, code, re] of cases) {
      const r = iotupd(...args);
      assert.equal(r.code, code, `${args.join(' ')}: ${r.stderr}`);
      assert.equal(r.stderr.trim().split('\n').length, 1, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, /^iotupd: /);
      assert.match(r.stderr, re, args.join(' '));
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the table fits the terminal: sections trimmed to the rows given, the rest counted', () => {
  const now = 1_000_000;
  const dev = (i: number, state: 'idle' | 'failed', trusted = true): DeviceView => ({
    deviceId: `dev-${i}`,
    publicKey: new Uint8Array(32),
    trusted,
    counter: 1n,
    firstSeen: now,
    lastSeen: now - (i % 7 === 0 ? 10_000_000 : 0),
    reports: 1,
    reason: 'heartbeat',
    product: 'sensor',
    deviceClass: '',
    state,
    installedVersion: '1.0.0',
    installedSequence: 1n,
    uptime: 1,
    agentVersion: '0.1.0',
    deviceTime: now,
    health: i % 7 === 0 ? 'quiet' : state === 'failed' ? 'failed' : 'ok',
  });
  const devices = [...Array.from({ length: 50 }, (_, i) => dev(i, i % 5 === 0 ? 'failed' : 'idle')), dev(99, 'idle', false)];
  const summary: FleetSummary = {
    product: 'sensor',
    trusted: 50,
    unknown: 1,
    health: { ok: 0, failed: 0, quiet: 0 },
    states: {},
    versions: [{ version: '1.0.0', count: 50 }],
    drops: { oversized: 0, malformed: 0, 'wrong-product': 0, signature: 0, forged: 2, replay: 0, conflict: 0, 'unknown-limit': 0, publisher: 0 },
    quietAfterMs: 150_000,
    releases: { serving: 0, paused: 0, unknown: 0 },
  };
  const full = formatTable(summary, devices, now);
  assert.equal(full.split('\n').filter((l) => /^dev-\d+ /.test(l)).length, 51);
  const short = formatTable(summary, devices, now, 20);
  const lines = short.split('\n');
  assert.ok(lines.length <= 20, `${lines.length} lines`);
  assert.match(short, /^failed \(\d+\)$/m, 'failed comes first');
  assert.match(short, /\.\.\. \d+ more|: \d+ more/);
  assert.match(short, /dropped: forged 2/);
  // What devices send reaches the terminal as text: an error or version holding escape sequences
  // is shown escaped, and cannot clear the screen or set the window title.
  const evil = { ...dev(7, 'failed'), installedVersion: '1.0\x1b]0;owned\x07', lastError: 'bad\x1b[2J\rdigest' };
  const shown = formatTable({ ...summary, versions: [{ version: '9\x1b[H', count: 1 }] }, [evil], now);
  assert.ok(![...shown].some((c) => c !== '\n' && (c < ' ' || c === '\x7f')), JSON.stringify(shown));
  assert.match(shown, /1\.0\\u001b\]0;owned\\u0007/);
  assert.match(shown, /bad\\u001b\[2J\\u000ddigest/);
  assert.match(shown, /versions: 9\\u001b\[H x1/);
});
