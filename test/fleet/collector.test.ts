// The collector on real signed datagrams, a real registry file and a real SQLite file.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ErrorCode } from '../../src/errors.js';
import { Collector, type CollectorEvent } from '../../src/fleet/collector.js';
import { DeviceIdentity } from '../../src/fleet/identity.js';
import { Registry } from '../../src/fleet/registry.js';
import { FleetStore } from '../../src/fleet/store.js';
import { MAX_STATUS_BYTES } from '../../src/wire/status.js';
import { body } from './fixtures.js';
import { prng } from '../support/prng.js';


function setup(n: number): { dir: string; ids: DeviceIdentity[]; registry: string; db: string } {
  const dir = mkdtempSync(join(tmpdir(), 'iotupd-fleet-col-'));
  const ids = Array.from({ length: n }, (_, i) => DeviceIdentity.open(join(dir, `dev-${i}`), { reserve: 10 }));
  const reg = new Registry();
  ids.forEach((id, i) => reg.enrol(`dev-${i}`, id.publicKey));
  const registry = join(dir, 'registry.txt');
  reg.save(registry);
  return { dir, ids, registry, db: join(dir, 'fleet.db') };
}

test('enrolled devices are trusted; current state, version counts and history come from the database', async () => {
  const { dir, ids, registry, db } = setup(3);
  try {
    let t = 1_000_000;
    const c = new Collector({ product: 'sensor', db, registry, now: () => t, quietAfterMs: 60_000 });
    const events: CollectorEvent[] = [];
    c.on('event', (e) => events.push(e));
    for (let i = 0; i < 3; i++) assert.equal(c.ingest((ids[i] as DeviceIdentity).seal(body(`dev-${i}`, { reason: 'start' }))).accepted, true);
    const d0 = ids[0] as DeviceIdentity;
    c.ingest(d0.seal(body('dev-0', { state: 'receiving', progress: 0.25, pendingVersion: '1.1.0', pendingSequence: 4n, reason: 'change' })));
    c.ingest(d0.seal(body('dev-0', { state: 'receiving', progress: 0.5, pendingVersion: '1.1.0', pendingSequence: 4n }))); // heartbeat, no transition
    c.ingest(d0.seal(body('dev-0', { state: 'installed', installedVersion: '1.1.0', installedSequence: 4n, reason: 'change' })));
    c.ingest((ids[1] as DeviceIdentity).seal(body('dev-1', { state: 'failed', lastError: 'verify: bad digest', reason: 'change' })));
    const devs = c.devices();
    assert.equal(devs.length, 3);
    assert.ok(devs.every((d) => d.trusted));
    assert.equal(c.device('dev-0')?.state, 'installed');
    assert.equal(c.device('dev-1')?.health, 'failed');
    assert.equal(c.device('dev-2')?.health, 'ok');
    assert.deepEqual(c.versionCounts(), [
      { version: '1.0.0', count: 2 },
      { version: '1.1.0', count: 1 },
    ]);
    const h = c.history('dev-0');
    assert.deepEqual(
      h.map((e) => e.state),
      ['installed', 'receiving', 'idle'],
      'three transitions; the progress-only heartbeat is not one',
    );
    assert.equal(events.filter((e) => e.type === 'report').length, 7);
    // Quiet after quietAfterMs without a report; a report brings it back.
    t += 60_001;
    c.tick(t);
    assert.equal(c.device('dev-2')?.health, 'quiet');
    assert.equal(c.device('dev-1')?.health, 'quiet', 'quiet is shown apart from failed');
    assert.equal(events.filter((e) => e.type === 'quiet').length, 3);
    c.ingest((ids[2] as DeviceIdentity).seal(body('dev-2')));
    assert.equal(c.device('dev-2')?.health, 'ok');
    const s = c.summary();
    assert.deepEqual(s.health, { ok: 1, failed: 0, quiet: 2 });
    assert.equal(s.trusted, 3);
    await c.close();
    // The file holds it all for another reader.
    const ro = new FleetStore(db, { readonly: true });
    assert.equal(ro.all().length, 3);
    assert.equal(ro.history('dev-1')[0]?.lastError, 'verify: bad digest');
    ro.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('forged: a report claiming an enrolled device under another key is dropped, counted, never shown', async () => {
  const { dir, ids, registry, db } = setup(1);
  try {
    const c = new Collector({ product: 'sensor', db, registry });
    c.ingest((ids[0] as DeviceIdentity).seal(body('dev-0')));
    const forger = DeviceIdentity.open(join(dir, 'forger'));
    const r = c.ingest(forger.seal(body('dev-0', { state: 'failed', installedVersion: '6.6.6', reason: 'change' })));
    assert.deepEqual([r.accepted, !r.accepted && r.reason], [false, 'forged']);
    assert.equal(c.device('dev-0')?.installedVersion, '1.0.0');
    assert.equal(c.drops.forged, 1);
    // Without the protection (no registry), the same datagram would have been shown: as unknown.
    const open = new Collector({ product: 'sensor' });
    const u = open.ingest(forger.seal(body('dev-0', { installedVersion: '6.6.6' })));
    assert.ok(u.accepted && 'trusted' in u && !u.trusted);
    assert.deepEqual(open.versionCounts(), [], 'unknown devices are not counted as the fleet');
    await open.close();
    await c.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('bad signature: a report altered in flight is dropped as signature, for enrolled and unknown keys', async () => {
  const { dir, ids, registry } = setup(1);
  try {
    const c = new Collector({ product: 'sensor', registry });
    const stranger = DeviceIdentity.open(join(dir, 'stranger'));
    for (const [id, who] of [
      ['dev-0', ids[0] as DeviceIdentity],
      ['stranger', stranger],
    ] as const) {
      const bytes = who.seal(body(id, { installedVersion: '1.0.0' }));
      // Flip a bit of the version text (still valid UTF-8: '1' -> '0'), keep the datagram well formed.
      const at = bytes.length - 64 - 1 - 5 - 1 - 1 - 5; // within the installed version field
      const bad = bytes.slice();
      bad[at] = (bad[at] as number) ^ 0x01;
      const r = c.ingest(bad);
      assert.equal(!r.accepted && r.reason, 'signature', `${id}: ${JSON.stringify(r)}`);
    }
    assert.equal(c.drops.signature, 2);
    assert.equal(c.devices().length, 0);
    await c.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('replay: an old or repeated report is dropped, also after the collector restarts from its database', async () => {
  const { dir, ids, registry, db } = setup(1);
  try {
    const d = ids[0] as DeviceIdentity;
    const old = d.seal(body('dev-0', { state: 'idle' }));
    const newer = d.seal(body('dev-0', { state: 'installing', reason: 'change' }));
    const c = new Collector({ product: 'sensor', db, registry });
    assert.equal(c.ingest(newer).accepted, true);
    assert.equal((c.ingest(newer) as { reason?: string }).reason, 'replay');
    assert.equal((c.ingest(old) as { reason?: string }).reason, 'replay');
    assert.equal(c.device('dev-0')?.state, 'installing');
    await c.close();
    // Restarted mid-rollout: devices, counters and drop totals come back from the file.
    const c2 = new Collector({ product: 'sensor', db, registry });
    assert.equal(c2.device('dev-0')?.state, 'installing');
    assert.equal((c2.ingest(old) as { reason?: string }).reason, 'replay');
    assert.equal(c2.ingest(d.seal(body('dev-0', { state: 'installed', reason: 'change' }))).accepted, true);
    assert.equal(c2.summary().drops.replay, 3);
    await c2.close();
    // A database of another product is refused, not mixed.
    assert.throws(() => new Collector({ product: 'camera', db }), (e: unknown) => (e as { code?: string }).code === ErrorCode.FLEET_DB);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('oversized, malformed and wrong-product datagrams are dropped and counted; random junk never throws', async () => {
  const { dir, ids, registry } = setup(1);
  try {
    const c = new Collector({ product: 'sensor', registry });
    const drops: string[] = [];
    c.on('drop', (e) => drops.push(e.reason));
    assert.equal((c.ingest(new Uint8Array(MAX_STATUS_BYTES + 1)) as { reason?: string }).reason, 'oversized');
    assert.equal((c.ingest(new Uint8Array(60000)) as { reason?: string }).reason, 'oversized');
    const good = (ids[0] as DeviceIdentity).seal(body('dev-0'));
    assert.equal((c.ingest(good.subarray(0, good.length - 3)) as { reason?: string }).reason, 'malformed');
    assert.equal((c.ingest(new Uint8Array(0)) as { reason?: string }).reason, 'malformed');
    assert.equal((c.ingest((ids[0] as DeviceIdentity).seal(body('dev-0', { product: 'camera' }))) as { reason?: string }).reason, 'wrong-product');
    const rnd = prng(9);
    for (let i = 0; i < 2000; i++) {
      const junk = Uint8Array.from({ length: Math.floor(rnd() * (MAX_STATUS_BYTES + 1)) }, () => Math.floor(rnd() * 256));
      if (i % 2 === 0) junk.set([0x49, 0x55, 0x53, 0x54, 1].slice(0, junk.length));
      assert.equal(c.ingest(junk).accepted, false);
    }
    assert.equal(c.drops.oversized, 2);
    assert.equal(c.drops.malformed + c.drops.oversized + c.drops['wrong-product'], 2005);
    assert.equal(drops.length, 2005);
    assert.equal(c.devices().length, 0);
    assert.equal(c.ingest(good).accepted, true, 'a good report still gets through after the junk');
    await c.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('unknown keys are shown as unknown until the operator approves them into the registry', async () => {
  const { dir, registry, db } = setup(0);
  try {
    let t = 5_000;
    const c = new Collector({ product: 'sensor', db, registry, now: () => t });
    const newcomer = DeviceIdentity.open(join(dir, 'newcomer'));
    const r = c.ingest(newcomer.seal(body('new-1', { reason: 'start' })));
    assert.ok(r.accepted && 'trusted' in r && !r.trusted);
    assert.equal(c.summary().unknown, 1);
    assert.equal(c.summary().trusted, 0);
    // A second key claiming the same unknown id: a conflict, not a takeover.
    const squatter = DeviceIdentity.open(join(dir, 'squatter'));
    assert.equal((c.ingest(squatter.seal(body('new-1'))) as { reason?: string }).reason, 'conflict');
    // Approve: the key the collector saw goes into the registry (as `iotupd fleet approve` does).
    const seen = c.device('new-1');
    assert.ok(seen);
    const reg = Registry.load(registry);
    reg.enrol('new-1', seen.publicKey);
    reg.save(registry);
    const events: CollectorEvent[] = [];
    c.on('event', (e) => events.push(e));
    t += 10;
    c.tick(t);
    assert.ok(events.some((e) => e.type === 'registry'));
    assert.equal(c.device('new-1')?.trusted, true);
    assert.equal(c.ingest(newcomer.seal(body('new-1', { state: 'receiving', reason: 'change' }))).accepted, true);
    assert.deepEqual(c.versionCounts(), [{ version: '1.0.0', count: 1 }]);
    await c.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('unknown devices are capped: further new ids are dropped, known ones still update, enrolled ones still count', async () => {
  const { dir, ids, registry } = setup(1);
  try {
    const c = new Collector({ product: 'sensor', registry, maxUnknown: 3 });
    const strangers = Array.from({ length: 5 }, (_, i) => DeviceIdentity.open(join(dir, `s${i}`)));
    const results = strangers.map((s, i) => c.ingest(s.seal(body(`s-${i}`))));
    assert.deepEqual(
      results.map((r) => (r.accepted ? 'ok' : r.reason)),
      ['ok', 'ok', 'ok', 'unknown-limit', 'unknown-limit'],
    );
    assert.equal(c.ingest((strangers[0] as DeviceIdentity).seal(body('s-0', { state: 'receiving' }))).accepted, true);
    assert.equal(c.ingest((ids[0] as DeviceIdentity).seal(body('dev-0'))).accepted, true);
    assert.equal(c.summary().unknown, 3);
    assert.equal(c.drops['unknown-limit'], 2);
    await c.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('events(): an async stream a dashboard can follow, ended by its signal', async () => {
  const { dir, ids } = setup(1);
  try {
    const c = new Collector({ product: 'sensor', registry: Registry.parse(`dev-0 ${Buffer.from((ids[0] as DeviceIdentity).publicKey).toString('hex')}\n`) });
    const ac = new AbortController();
    const seen: string[] = [];
    const reading = (async () => {
      for await (const e of c.events(ac.signal)) {
        seen.push(e.type);
        if (seen.length === 2) ac.abort();
      }
    })();
    await new Promise((r) => setImmediate(r));
    c.ingest((ids[0] as DeviceIdentity).seal(body('dev-0')));
    c.ingest(new Uint8Array(3));
    await reading;
    assert.deepEqual(seen, ['report', 'drop']);
    await c.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('registry file: bad lines are a typed error with the line number', () => {
  assert.throws(() => Registry.parse('dev-0 abcd\n', 'reg'), (e: unknown) => (e as { code?: string }).code === ErrorCode.FLEET_REGISTRY && /reg:1/.test((e as Error).message));
  assert.throws(() => Registry.parse(`a ${'00'.repeat(32)}\na ${'11'.repeat(32)}\n`), /listed twice/);
  const r = Registry.parse(`# comment\n\ndev-9 ${'ab'.repeat(32)}\n`);
  assert.equal(r.size, 1);
  assert.throws(() => r.enrol('dev-9', new Uint8Array(32).fill(1)), /another key/);
  assert.equal(r.enrol('dev-9', new Uint8Array(32).fill(1), true), 'replaced');
});
