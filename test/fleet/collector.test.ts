// The collector on real signed datagrams, a real registry file and a real SQLite file.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type BetterSqlite3 from 'better-sqlite3';
import { ErrorCode } from '../../src/errors.js';
import { signBeacon, type BeaconContent } from '../../src/announce/sign.js';
import { issueDelegation } from '../../src/crypto/certs.js';
import { privateKeyFromSeed, signingKeyFrom, type SigningKey } from '../../src/crypto/keys.js';
import { TrustStore } from '../../src/crypto/trust.js';
import { Collector, type CollectorEvent, type IngestResult } from '../../src/fleet/collector.js';
import { DeviceIdentity } from '../../src/fleet/identity.js';
import { Registry } from '../../src/fleet/registry.js';
import { FleetStore, SCHEMA_VERSION } from '../../src/fleet/store.js';
import { MAX_STATUS_BYTES } from '../../src/wire/status.js';
import { body } from './fixtures.js';
import { prng } from '../support/prng.js';

const Database = createRequire(import.meta.url)('better-sqlite3') as typeof BetterSqlite3;


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

// --- the publisher's STATE beacons on the status channel ----------------------------------------

const T0 = 1_790_000_000;
const PRODUCT = 'sensor';

function signingKey(label: string, chain: Uint8Array[] = []): SigningKey {
  return signingKeyFrom(privateKeyFromSeed(createHash('sha256').update(label).digest()), chain);
}
const root = signingKey('collector-test root');
const publisher = signingKey('collector-test signer', [
  issueDelegation(root, signingKey('collector-test signer').publicKey, { products: [PRODUCT], notBefore: T0 - 86_400, notAfter: T0 + 86_400, minSequence: 1n, maxSequence: 1000n }),
]);
const stranger = signingKey('collector-test stranger');

let beaconCounter = 1_000n;
type StateContent = Extract<BeaconContent, { kind: 'state' }>;
function stateBeacon(over: Partial<StateContent> = {}, key: SigningKey = publisher): Uint8Array {
  beaconCounter += 1n;
  const sequence = over.sequence ?? 5n;
  return signBeacon(
    {
      kind: 'state',
      counter: beaconCounter,
      issuedAt: T0,
      expires: T0 + 600,
      product: PRODUCT,
      sequence,
      manifestId: new Uint8Array(createHash('sha256').update(`manifest ${sequence}`).digest()),
      state: 'paused',
      version: `${sequence}.0`,
      demand: { live: 3, needing: 0, received: 2, waiting: 0, outside: 1, gaveUp: 0 },
      reason: 'none of the 3 devices heard needs it',
      ...over,
    },
    key,
  );
}

const dropOf = (r: IngestResult): string => (r.accepted ? 'accepted' : `${r.reason} ${r.detail}`);

test('a verified STATE beacon becomes a release: view, event, summary; a repeat is no change, a new state is', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'iotupd-fleet-rel-'));
  try {
    let t = T0 * 1000;
    const c = new Collector({ product: PRODUCT, db: join(dir, 'fleet.db'), trust: new TrustStore([root]), now: () => t, quietAfterMs: 60_000 });
    const events: CollectorEvent[] = [];
    c.on('event', (e) => events.push(e));
    const r = c.ingest(stateBeacon(), 'fd00::9');
    assert.ok(r.accepted && 'release' in r, dropOf(r));
    assert.equal(r.change, true);
    const [v] = c.releases();
    assert.ok(v);
    assert.deepEqual(
      [v.sequence, v.version, v.state, v.current, v.heard, v.reason, v.issuedAt, v.receivedAt, v.lastFrom],
      [5n, '5.0', 'paused', 'paused', 'ok', 'none of the 3 devices heard needs it', T0, t, 'fd00::9'],
    );
    assert.deepEqual(v.demand, { live: 3, needing: 0, received: 2, waiting: 0, outside: 1, gaveUp: 0 });
    assert.deepEqual(v.signerKeyId, publisher.keyId);
    assert.deepEqual(events.map((e) => e.type), ['release']);
    t += 1000;
    const again = c.ingest(stateBeacon());
    assert.ok(again.accepted && 'release' in again && again.change === false, 'the same word again is not a change');
    t += 1000;
    const resumed = c.ingest(stateBeacon({ state: 'serving', demand: { live: 4, needing: 1, received: 2, waiting: 0, outside: 1, gaveUp: 0 }, reason: '1 of 4 devices heard need it' }));
    assert.ok(resumed.accepted && 'release' in resumed && resumed.change === true);
    assert.equal(c.releases()[0]?.current, 'serving');
    // A second release: newest sequence first; the summary counts what is shown.
    c.ingest(stateBeacon({ sequence: 7n }));
    c.ingest(stateBeacon({ sequence: 6n, state: 'serving' }));
    assert.deepEqual(
      c.releases().map((x) => [x.sequence, x.current]),
      [
        [7n, 'paused'],
        [6n, 'serving'],
        [5n, 'serving'],
      ],
    );
    assert.deepEqual(c.summary().releases, { serving: 2, paused: 1, unknown: 0 });
    assert.equal(c.summary().drops.publisher, 0);
    // Devices are untouched by beacons.
    assert.equal(c.devices().length, 0);
    await c.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('publisher drops: stranger key, forged, replayed counter, expired, wrong product, ANNOUNCE or HALT on the status channel, no trust', async () => {
  let t = T0 * 1000;
  const c = new Collector({ product: PRODUCT, trust: new TrustStore([root]), now: () => t });
  const drops: string[] = [];
  c.on('drop', (e) => drops.push(`${e.reason} ${e.detail}`));
  const good = stateBeacon();
  assert.ok(c.ingest(good).accepted);
  const cases: [string, Uint8Array, RegExp][] = [
    ['stranger key', stateBeacon({}, stranger), /^publisher untrusted: /],
    ['forged', (() => {
      const b = stateBeacon({ reason: 'all good' });
      b[b.length - 70] = (b[b.length - 70] as number) ^ 0x01; // inside the reason text
      return b;
    })(), /^publisher forged: /],
    ['replayed', good, /^publisher replay: /],
    ['expired', stateBeacon({ issuedAt: T0 - 7200, expires: T0 - 3600 }), /^publisher expired: /],
    ['wrong product', stateBeacon({ product: 'camera' }), /^publisher wrong-product: /],
    [
      'ANNOUNCE',
      signBeacon(
        { kind: 'announce', counter: (beaconCounter += 1n), issuedAt: T0, expires: T0 + 600, product: PRODUCT, sequence: 5n, manifestId: new Uint8Array(32), version: '5.0', objectId: new Uint8Array(8).fill(1), size: 100, group: 'ff1e::5', port: 4242, dataTimeout: 30, channel: '' },
        publisher,
      ),
      /^publisher ANNOUNCE beacon on the status channel/,
    ],
    ['HALT', signBeacon({ kind: 'halt', counter: (beaconCounter += 1n), issuedAt: T0, expires: T0 + 600, product: PRODUCT, sequence: 5n, manifestId: new Uint8Array(32), rollback: true }, publisher), /^publisher HALT beacon on the status channel/],
  ];
  for (const [what, bytes, says] of cases) {
    t += 100;
    const r = c.ingest(bytes, 'fd00::66');
    assert.equal(r.accepted, false, what);
    assert.match(dropOf(r), says, what);
  }
  assert.equal(c.drops.publisher, cases.length);
  assert.equal(drops.length, cases.length);
  // Nothing of them reached the table: one release, as the good beacon said.
  assert.deepEqual(
    c.releases().map((x) => [x.sequence, x.state, x.reason]),
    [[5n, 'paused', 'none of the 3 devices heard needs it']],
  );
  // Junk behind the beacon magic never throws: each is one publisher drop.
  const rnd = prng(11);
  for (let i = 0; i < 500; i++) {
    const junk = Uint8Array.from({ length: 6 + Math.floor(rnd() * 1400) }, () => Math.floor(rnd() * 256));
    junk.set([0x49, 0x4f, 0x54, 0x42, 1, 3]);
    assert.equal(c.ingest(junk).accepted, false);
  }
  assert.equal(c.drops.publisher, cases.length + 500);
  assert.equal(c.summary().drops.publisher, cases.length + 500);
  await c.close();
  // Without trust anchors every beacon is dropped, however well signed.
  const blind = new Collector({ product: PRODUCT, now: () => t });
  assert.match(dropOf(blind.ingest(stateBeacon())), /^publisher .*no trust anchors/);
  assert.deepEqual(blind.releases(), []);
  await blind.close();
});

test('restart from the database: the release comes back (quiet when old), a replay of an old beacon is refused, repeats are written sparingly', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'iotupd-fleet-rel-'));
  try {
    const db = join(dir, 'fleet.db');
    let t = T0 * 1000;
    const trust = new TrustStore([root]);
    const c = new Collector({ product: PRODUCT, db, trust, now: () => t, quietAfterMs: 30_000, storeEveryMs: 10_000 });
    const old = stateBeacon({ state: 'serving', reason: 'old word' });
    assert.ok(c.ingest(old).accepted);
    const stored = (): number => (c.store.db.prepare('SELECT received_at FROM releases').get() as { received_at: number }).received_at;
    const latest = stateBeacon();
    t += 1000;
    assert.ok(c.ingest(latest).accepted);
    assert.equal(stored(), t, 'a change is written at once');
    const first = t;
    t += 4000;
    assert.ok(c.ingest(stateBeacon()).accepted);
    assert.equal(stored(), first, 'a repeat within storeEveryMs is not written');
    t += 7000;
    assert.ok(c.ingest(stateBeacon()).accepted);
    assert.equal(stored(), t, 'a repeat after storeEveryMs is');
    t += 2000;
    assert.ok(c.ingest(stateBeacon()).accepted);
    const lastHeard = t;
    await c.close();
    // close() writes the last time heard.
    const c2 = new Collector({ product: PRODUCT, db, trust, now: () => t, quietAfterMs: 30_000 });
    const [v] = c2.releases();
    assert.deepEqual([v?.sequence, v?.state, v?.current, v?.reason, v?.receivedAt], [5n, 'paused', 'paused', 'none of the 3 devices heard needs it', lastHeard]);
    // The filter of a new collector has not seen the old beacon's counter; the database has.
    assert.match(dropOf(c2.ingest(old)), /^publisher replay: counter \d+ of signer [0-9a-f]+ is not above \d+/);
    assert.equal(c2.releases()[0]?.state, 'paused');
    await c2.close();
    // Restarted long after: the last word is kept, shown as unknown (publisher quiet).
    t += 60_000;
    const c3 = new Collector({ product: PRODUCT, db, trust, now: () => t, quietAfterMs: 30_000 });
    assert.deepEqual(
      c3.releases().map((x) => [x.state, x.heard, x.current]),
      [['paused', 'quiet', 'unknown']],
    );
    await c3.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('quiet publisher: a release not heard for the quiet time is shown as unknown, not as its last state, until the next beacon', async () => {
  let t = T0 * 1000;
  const c = new Collector({ product: PRODUCT, trust: new TrustStore([root]), now: () => t, quietAfterMs: 60_000, publisherQuietAfterMs: 20_000 });
  const events: Extract<CollectorEvent, { type: 'release' }>[] = [];
  c.on('release', (e) => events.push(e));
  assert.ok(c.ingest(stateBeacon({ state: 'serving', reason: 'needed' })).accepted);
  t += 20_000;
  c.tick(t);
  assert.deepEqual(c.releases().map((x) => [x.heard, x.current]), [['ok', 'serving']]);
  t += 1;
  c.tick(t);
  assert.deepEqual(c.releases().map((x) => [x.heard, x.current, x.state]), [['quiet', 'unknown', 'serving']]);
  assert.deepEqual(c.summary().releases, { serving: 0, paused: 0, unknown: 1 });
  assert.deepEqual(events.map((e) => [e.release.current, e.change]), [
    ['serving', true],
    ['unknown', true],
  ]);
  c.tick(t + 5000);
  assert.equal(events.length, 2, 'going quiet is one event');
  t += 10_000;
  const r = c.ingest(stateBeacon({ state: 'serving', reason: 'needed' }));
  assert.ok(r.accepted && 'release' in r && r.change, 'heard again after a quiet spell is a change');
  assert.deepEqual(c.releases().map((x) => [x.heard, x.current]), [['ok', 'serving']]);
  await c.close();
});

test('releases are bounded: beyond maxReleases the lowest sequences are forgotten, in the database too', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'iotupd-fleet-rel-'));
  try {
    const db = join(dir, 'fleet.db');
    const t = T0 * 1000;
    const c = new Collector({ product: PRODUCT, db, trust: new TrustStore([root]), now: () => t, maxReleases: 3 });
    for (const s of [4n, 9n, 2n, 7n, 8n]) assert.ok(c.ingest(stateBeacon({ sequence: s })).accepted);
    assert.deepEqual(c.releases().map((x) => x.sequence), [9n, 8n, 7n]);
    await c.close();
    const c2 = new Collector({ product: PRODUCT, db, now: () => t });
    assert.deepEqual(c2.releases().map((x) => x.sequence), [9n, 8n, 7n]);
    await c2.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('schema: a version 1 database gains the releases table; a newer version is refused untouched', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'iotupd-fleet-schema-'));
  try {
    const db = join(dir, 'fleet.db');
    const { ids, registry } = setup(1);
    try {
      // A database as schema 1 left it: devices, no releases table.
      const c0 = new Collector({ product: PRODUCT, db, registry });
      c0.ingest((ids[0] as DeviceIdentity).seal(body('dev-0')));
      await c0.close();
      const raw = new Database(db);
      raw.exec("DROP TABLE releases; UPDATE meta SET value = '1' WHERE key = 'schema'");
      raw.close();
      const t = T0 * 1000;
      const c = new Collector({ product: PRODUCT, db, registry, trust: new TrustStore([root]), now: () => t });
      assert.equal(c.device('dev-0')?.trusted, true, 'the devices are kept');
      assert.equal((c.store.db.prepare("SELECT value FROM meta WHERE key = 'schema'").get() as { value: string }).value, String(SCHEMA_VERSION));
      assert.ok(c.ingest(stateBeacon()).accepted);
      await c.close();
      const again = new Collector({ product: PRODUCT, db, now: () => t });
      assert.equal(again.releases().length, 1);
      await again.close();
      // A database of a newer iotupd: refused, and left as it was.
      const newer = new Database(db);
      newer.exec(`UPDATE meta SET value = '${SCHEMA_VERSION + 1}' WHERE key = 'schema'`);
      newer.close();
      assert.throws(
        () => new Collector({ product: PRODUCT, db }),
        (e: unknown) => (e as { code?: string }).code === ErrorCode.FLEET_DB && (e as Error).message.includes(`schema version ${SCHEMA_VERSION + 1}, this iotupd reads up to ${SCHEMA_VERSION}`),
      );
      const after = new Database(db, { readonly: true });
      assert.equal((after.prepare("SELECT value FROM meta WHERE key = 'schema'").get() as { value: string }).value, String(SCHEMA_VERSION + 1));
      after.close();
    } finally {
      rmSync(join(registry, '..'), { recursive: true, force: true });
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a viewer follows the database another collector writes: devices and releases as they change, read-only', async () => {
  const { dir, ids, registry, db } = setup(2);
  try {
    let t = T0 * 1000;
    const writer = new Collector({ product: PRODUCT, db, registry, trust: new TrustStore([root]), now: () => t, quietAfterMs: 60_000, storeEveryMs: 0 });
    const d0 = ids[0] as DeviceIdentity;
    writer.ingest(d0.seal(body('dev-0', { reason: 'start' })));
    const viewer = new Collector({ product: PRODUCT, db, view: true, now: () => t, quietAfterMs: 60_000 });
    const events: CollectorEvent[] = [];
    viewer.on('event', (e) => events.push(e));
    assert.deepEqual(viewer.devices().map((d) => [d.deviceId, d.state, d.trusted]), [['dev-0', 'idle', true]]);
    assert.equal(viewer.refresh(), 0, 'nothing new');
    t += 1000;
    writer.ingest(d0.seal(body('dev-0', { state: 'installed', installedVersion: '1.1.0', installedSequence: 4n, reason: 'change' })));
    writer.ingest((ids[1] as DeviceIdentity).seal(body('dev-1', { reason: 'start' })));
    assert.equal(writer.ingest(stateBeacon()).accepted, true);
    assert.equal(viewer.refresh(), 3);
    assert.deepEqual(events, [{ type: 'refresh', changed: 3 }]);
    assert.equal(viewer.device('dev-0')?.installedVersion, '1.1.0');
    assert.equal(viewer.summary().trusted, 2);
    assert.deepEqual(viewer.releases().map((r) => [r.sequence, r.state]), [[5n, 'paused']]);
    // Read-only: it neither ingests nor listens, and another product's database is refused.
    assert.throws(() => viewer.ingest(d0.seal(body('dev-0'))), /a viewer does not ingest/);
    await assert.rejects(viewer.listen({ interface: 'lo' }), /a viewer does not listen/);
    assert.throws(() => new Collector({ product: 'other', db, view: true }), /belongs to product 'sensor'/);
    assert.throws(() => new Collector({ product: PRODUCT, view: true }), /needs the database file/);
    await viewer.close();
    await writer.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
