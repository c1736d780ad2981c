// The device-side AnnounceFilter: one test per refusal, each also showing the beacon is accepted
// when the attack is absent (a test that could pass with the check removed is a defect).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { AnnounceFilter, type AnnounceFilterOptions, type AnnounceResult } from '../../src/announce/filter.js';
import { signBeacon, type BeaconContent } from '../../src/announce/sign.js';
import { announceChannelName, releaseChannel, releaseChannelName } from '../../src/announce/channels.js';
import { issueDelegation } from '../../src/crypto/certs.js';
import { privateKeyFromSeed, signingKeyFrom, type SigningKey } from '../../src/crypto/keys.js';
import { TrustStore } from '../../src/crypto/trust.js';
import { channelGroup } from '../../src/channel/naming.js';

const T0 = 1_790_000_000;
const NOW = T0 * 1000;
const PRODUCT = 'sensor-v2';

function key(label: string, chain: Uint8Array[] = []): SigningKey {
  return signingKeyFrom(privateKeyFromSeed(createHash('sha256').update(label).digest()), chain);
}

const root = key('root');
function delegated(label: string, opts: { products?: string[]; min?: bigint; max?: bigint } = {}): SigningKey {
  const k = key(label);
  const cert = issueDelegation(root, k.publicKey, {
    products: opts.products ?? [PRODUCT],
    notBefore: T0 - 86400,
    notAfter: T0 + 86400,
    minSequence: opts.min ?? 1n,
    maxSequence: opts.max ?? 1000n,
  });
  return key(label, [cert]);
}
const signer = delegated('signer');

function mid(n: number): Uint8Array {
  return new Uint8Array(createHash('sha256').update(`manifest ${n}`).digest());
}

let counter = 1000n;
function announce(over: Partial<Extract<BeaconContent, { kind: 'announce' }>> = {}, k: SigningKey = signer): Uint8Array {
  counter += 1n;
  const sequence = over.sequence ?? 5n;
  const manifestId = over.manifestId ?? mid(Number(sequence));
  const ch = releaseChannel(PRODUCT, sequence, manifestId);
  return signBeacon(
    {
      kind: 'announce',
      counter,
      issuedAt: T0,
      expires: T0 + 600,
      product: PRODUCT,
      sequence,
      manifestId,
      version: `1.${sequence}`,
      objectId: manifestId.subarray(0, 8),
      size: 123456,
      group: ch.group,
      port: ch.port,
      dataTimeout: 30,
      channel: ch.name ?? '',
      ...over,
    },
    k,
  );
}

function halt(over: Partial<Extract<BeaconContent, { kind: 'halt' }>> = {}, k: SigningKey = signer): Uint8Array {
  counter += 1n;
  return signBeacon({ kind: 'halt', counter, issuedAt: T0, expires: T0 + 600, product: PRODUCT, sequence: 5n, manifestId: mid(5), rollback: false, ...over }, k);
}

function filter(over: Partial<AnnounceFilterOptions> = {}): AnnounceFilter {
  return new AnnounceFilter({ trust: new TrustStore([root]), product: PRODUCT, installedSequence: 2n, ...over });
}

function refused(r: AnnounceResult, reason: string): void {
  assert.equal(r.type, 'refused', `expected refusal '${reason}', got ${JSON.stringify(r, (_k, v: unknown) => (typeof v === 'bigint' ? String(v) : v))}`);
  if (r.type === 'refused') assert.equal(r.reason, reason, r.message);
}

test('naming: announce and release channel names, unambiguous and hashed like any channel', () => {
  assert.equal(announceChannelName('sensor-v2'), 'iotupd:announce:sensor-v2');
  assert.equal(announceChannelName('a:b/c d'), 'iotupd:announce:a%3Ab%2Fc%20d');
  const id = new Uint8Array(32).fill(0xab);
  assert.equal(releaseChannelName('sensor-v2', 7n, id), `iotupd:release:sensor-v2:7:${'ab'.repeat(32)}`);
  assert.equal(releaseChannel('sensor-v2', 7n, id).group, channelGroup(releaseChannelName('sensor-v2', 7n, id)));
  assert.notEqual(releaseChannel('sensor-v2', 7n, id).group, releaseChannel('sensor-v2', 7n, new Uint8Array(32)).group);
  assert.throws(() => announceChannelName(''));
});

test('a valid announcement becomes one offer, then repeats; the offer says where the data is', () => {
  const f = filter();
  const r = f.push(announce(), NOW);
  assert.equal(r.type, 'offer');
  if (r.type !== 'offer') return;
  const o = r.offer;
  assert.equal(o.sequence, 5n);
  assert.equal(o.product, PRODUCT);
  assert.deepEqual(o.manifestId, mid(5));
  assert.equal(o.group, releaseChannel(PRODUCT, 5n, mid(5)).group);
  assert.equal(o.port, 4242);
  assert.equal(o.dataTimeout, 30);
  assert.equal(o.size, 123456);
  assert.deepEqual(o.signerKeyId, signer.keyId);
  const again = f.push(announce(), NOW + 5000);
  assert.equal(again.type, 'repeat');
  assert.equal(f.stats.offers, 1);
  assert.equal(f.stats.repeats, 1);
});

test('replay: the same bytes again, or an older counter, are refused', () => {
  const f = filter();
  const a = announce();
  const b = announce();
  assert.equal(f.push(b, NOW).type, 'offer');
  refused(f.push(b, NOW + 1), 'replay');
  refused(f.push(a, NOW + 2), 'replay');
  assert.equal(f.stats.refused.replay, 2);
  assert.equal(f.push(announce(), NOW + 3).type, 'repeat');
});

test('forged: any flipped bit of a valid beacon never yields an offer', () => {
  const good = announce();
  assert.equal(filter().push(good, NOW).type, 'offer');
  const seen = new Set<string>();
  for (let i = 0; i < good.length; i++) {
    for (const bit of [0x01, 0x80]) {
      const bad = good.slice();
      bad[i] = (bad[i] as number) ^ bit;
      const r = filter({ verifyBurst: 1e6, signerBurst: 1e6 }).push(bad, NOW);
      assert.equal(r.type, 'refused', `byte ${i} bit ${bit}`);
      if (r.type === 'refused') seen.add(r.reason);
    }
  }
  // Signature and signed fields give 'forged'; header, lengths and chain 'malformed' / 'untrusted'.
  for (const reason of ['forged', 'malformed', 'untrusted', 'wrong-product']) assert.ok(seen.has(reason), `${reason} among ${[...seen].join(',')}`);
});

test('forged: a signature by a key the root did not delegate, or a bare unpinned key', () => {
  const f = filter();
  refused(f.push(announce({}, key('stranger')), NOW), 'untrusted');
  // A chain copied from the real signer but a stranger's signature: the chain verifies, the beacon does not.
  const impostor = { ...key('stranger'), keyId: signer.keyId, chain: signer.chain };
  refused(f.push(announce({}, impostor), NOW), 'forged');
  assert.equal(f.push(announce(), NOW).type, 'offer');
});

test('delegation scope: product and sequence range of the signing key', () => {
  const other = delegated('other-product', { products: ['camera'] });
  refused(filter().push(announce({}, other), NOW), 'untrusted');
  const low = delegated('low-range', { max: 4n });
  refused(filter().push(announce({ sequence: 5n }, low), NOW), 'untrusted');
  assert.equal(filter().push(announce({ sequence: 4n }, low), NOW).type, 'offer');
  const anyProduct = delegated('wildcard', { products: ['*'] });
  assert.equal(filter().push(announce({}, anyProduct), NOW).type, 'offer');
});

test('wrong product is refused before any signature work', () => {
  const f = filter();
  refused(f.push(announce({ product: 'camera' }), NOW), 'wrong-product');
  assert.equal(f.stats.verifications, 0);
});

test('expiry: by a trusted clock, by the time floor without one; future issue times', () => {
  refused(filter().push(announce(), (T0 + 601) * 1000), 'expired');
  assert.equal(filter().push(announce(), (T0 + 600) * 1000).type, 'offer');
  // No trusted clock and no floor: expiry cannot be judged; the counter still stops replays.
  assert.equal(filter({ trustedClock: false }).push(announce(), 0).type, 'offer');
  refused(filter({ trustedClock: false, timeFloor: T0 + 601 }).push(announce(), 0), 'expired');
  // A clock set back does not revive an expired beacon when the floor is later.
  refused(filter({ timeFloor: T0 + 601 }).push(announce(), (T0 - 3600) * 1000), 'expired');
  refused(filter().push(announce({ issuedAt: T0 + 3600, expires: T0 + 7200 }), NOW), 'not-yet-valid');
  assert.equal(filter().push(announce({ issuedAt: T0 + 500, expires: T0 + 7200 }), NOW).type, 'offer');
});

test('lower or equal sequence than installed is refused; setInstalled raises the bar', () => {
  const f = filter({ installedSequence: 5n });
  refused(f.push(announce({ sequence: 5n }), NOW), 'lower-sequence');
  refused(f.push(announce({ sequence: 3n }), NOW), 'lower-sequence');
  assert.equal(f.push(announce({ sequence: 6n }), NOW).type, 'offer');
  f.setInstalled(6n);
  refused(f.push(announce({ sequence: 6n }), NOW), 'lower-sequence');
  assert.equal(f.stats.refused['lower-sequence'], 3);
});

test('same sequence, different releases: both refused and one conflict counted, even from two signers', () => {
  const second = delegated('second-publisher');
  const f = filter();
  assert.equal(f.push(announce({ sequence: 9n, manifestId: mid(900) }), NOW).type, 'offer');
  const c = f.push(announce({ sequence: 9n, manifestId: mid(901) }, second), NOW);
  assert.equal(c.type, 'conflict');
  if (c.type === 'conflict') {
    assert.equal(c.sequence, 9n);
    assert.deepEqual(new Set(c.manifestIds.map((m) => Buffer.from(m).toString('hex'))), new Set([mid(900), mid(901)].map((m) => Buffer.from(m).toString('hex'))));
  }
  refused(f.push(announce({ sequence: 9n, manifestId: mid(900) }), NOW), 'conflict');
  refused(f.push(announce({ sequence: 9n, manifestId: mid(901) }, second), NOW), 'conflict');
  assert.equal(f.stats.conflicts, 1);
  assert.equal(f.stats.refused.conflict, 3);
  // A higher sequence is the way out.
  assert.equal(f.push(announce({ sequence: 10n, manifestId: mid(1000) }), NOW).type, 'offer');
  // Two publishers announcing the SAME release (same manifest id) is no conflict.
  const g = filter();
  assert.equal(g.push(announce({ sequence: 9n, manifestId: mid(900) }), NOW).type, 'offer');
  assert.equal(g.push(announce({ sequence: 9n, manifestId: mid(900) }, second), NOW).type, 'repeat');
  assert.equal(g.stats.conflicts, 0);
});

test('halt: stops a release, is reported once as first, and is accepted below the installed sequence', () => {
  const f = filter();
  assert.equal(f.push(announce(), NOW).type, 'offer');
  const h = f.push(halt({ rollback: true }), NOW);
  assert.equal(h.type, 'halt');
  if (h.type === 'halt') {
    assert.equal(h.first, true);
    assert.equal(h.halt.rollback, true);
    assert.deepEqual(h.halt.manifestId, mid(5));
  }
  const h2 = f.push(halt(), NOW + 1000);
  assert.equal(h2.type === 'halt' && h2.first, false);
  refused(f.push(announce(), NOW + 2000), 'halted');
  assert.ok(f.halted(mid(5)));
  // A device that installed sequence 5 must still hear the halt (to roll back).
  const installed = filter({ installedSequence: 5n });
  assert.equal(installed.push(halt({ rollback: true }), NOW).type, 'halt');
  // A halt signed by an undelegated key is refused like any beacon.
  refused(filter().push(halt({}, key('stranger')), NOW), 'untrusted');
  // The kind byte is signed: an ANNOUNCE turned into a HALT does not verify.
  const a = announce();
  const asHalt = halt();
  refused(filter().push(Uint8Array.from(a.map((v, i) => (i === 5 ? 2 : v))), NOW), 'malformed');
  const flipped = asHalt.slice();
  flipped[5] = 1;
  refused(filter().push(flipped, NOW), 'malformed');
});

test('data that never comes: give up, back off (doubling), then offered again', () => {
  const f = filter();
  const r = f.push(announce(), NOW);
  assert.equal(r.type, 'offer');
  f.gaveUp(mid(5), NOW + 30_000, 30);
  assert.equal(f.push(announce(), NOW + 59_000).type, 'repeat');
  assert.equal(f.push(announce(), NOW + 60_000).type, 'offer');
  f.gaveUp(mid(5), NOW + 90_000, 30);
  assert.equal(f.push(announce(), NOW + 149_000).type, 'repeat');
  assert.equal(f.push(announce(), NOW + 150_000).type, 'offer');
  assert.equal(f.stats.offers, 3);
});

test('flood of forged beacons claiming the real signer: verifications bounded, the real one gets through later', () => {
  const f = filter();
  const good = announce();
  const forged = good.slice();
  forged[forged.length - 1] = (forged[forged.length - 1] as number) ^ 1;
  let flood = 0;
  for (let i = 0; i < 5000; i++) {
    const bad = forged.slice();
    // A fresh counter each time so the replay pre-check does not catch them for free.
    new DataView(bad.buffer).setBigUint64(17 + 2 + (signer.chain[0] as Uint8Array).length, BigInt(10_000 + i));
    const r = f.push(bad, NOW + i / 10);
    if (r.type === 'refused' && r.reason === 'flood') flood += 1;
    else assert.ok(r.type === 'refused' && r.reason === 'forged', JSON.stringify(r.type));
  }
  assert.ok(flood >= 4980, `flood refusals ${flood}`);
  assert.ok(f.stats.verifications <= 8 + 4 + 2, `verifications ${f.stats.verifications}`);
  assert.equal(f.push(good, NOW + 5000).type, 'offer');
});

test('flood of random signer ids: tables stay bounded, total verifications capped', () => {
  const f = filter({ maxSigners: 32 });
  const bases = Array.from({ length: 10 }, (_, j) => announce({}, delegated(`flood-${j}`)));
  let n = 0;
  for (let i = 0; i < 3000; i++) {
    const b = (bases[i % bases.length] as Uint8Array).slice();
    b.set(createHash('sha256').update(`id ${i}`).digest().subarray(0, 8), 8);
    f.push(b, NOW + i);
    n += 1;
  }
  assert.equal(f.stats.datagrams, n);
  assert.ok(f.stats.refused.flood > 2000, `flood ${f.stats.refused.flood}`);
  // 3 s of wall time at 20/s plus a 40 burst, each beacon costing its chain + signature.
  assert.ok(f.stats.verifications <= (40 + 3 * 20) * 2, `verifications ${f.stats.verifications}`);
  assert.ok(f.tables().signers <= 32);
  assert.ok(f.tables().counters <= 32);
});

test('malformed datagrams are counted, never thrown', () => {
  const f = filter();
  for (const d of [new Uint8Array(0), new Uint8Array(2000), new Uint8Array(100).fill(0x49), announce().subarray(0, 90)]) refused(f.push(d, NOW), 'malformed');
  assert.equal(f.stats.refused.malformed, 4);
  assert.equal(f.stats.datagrams, 4);
});

test('a STATE beacon is verified like the others and reported as a state, never as an offer', () => {
  const f = filter();
  counter += 1n;
  const content = { kind: 'state', counter, issuedAt: T0, expires: T0 + 600, product: PRODUCT, sequence: 5n, manifestId: mid(5), state: 'paused', version: '5.0', demand: { live: 3, needing: 0, received: 2, waiting: 0, outside: 1, gaveUp: 0 }, reason: 'none of the 3 devices heard needs it' } as const;
  const r = f.push(signBeacon(content, signer), NOW);
  assert.equal(r.type, 'state');
  if (r.type !== 'state') return;
  assert.equal(r.state.state, 'paused');
  assert.equal(r.state.version, '5.0');
  assert.deepEqual(r.state.demand, content.demand);
  assert.equal(f.stats.states, 1);
  assert.equal(f.stats.offers, 0);
  // Signed by a key that does not chain to the pinned root: refused as for any beacon.
  counter += 1n;
  refused(f.push(signBeacon({ ...content, counter }, key('stranger')), NOW), 'untrusted');
});

test('rememberCounter: a counter verified before a restart refuses replays of it and anything older', () => {
  const f = filter();
  const old = announce();
  const remembered = counter;
  const newer = announce({ sequence: 6n });
  f.rememberCounter(signer.keyId, remembered);
  refused(f.push(old, NOW), 'replay');
  f.rememberCounter(signer.keyId, remembered - 10n); // lower: ignored
  assert.equal(f.push(newer, NOW).type, 'offer');
});
