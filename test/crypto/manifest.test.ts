// Canonical encoding of the manifest and certificates, and hostile-input fuzzing of the verifier.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { fromHex, toHex } from '../../src/crypto/bytes.js';
import { blockHash, blockRanges, BlockHasher, parseOti } from '../../src/crypto/blocks.js';
import { decodeCertificateUnverified, issueDelegation, verifyCertificate } from '../../src/crypto/certs.js';
import { decodeManifestBody, encodeManifestBody, inspectManifest, signManifest, verifyManifest, type ManifestFields } from '../../src/crypto/manifest.js';
import { SecurityError } from '../../src/errors.js';
import { TrustStore } from '../../src/crypto/trust.js';
import { hierarchy, keyFromSeed, otiBytes, prng, release, T0 } from './fixtures.js';

const policy = { product: 'sensor-v2', installedSequence: 0n };

function u64(v: number | bigint): string {
  return BigInt(v).toString(16).padStart(16, '0');
}

test('manifest body: byte layout written out by hand from the spec matches the encoder', () => {
  const f: ManifestFields = {
    product: 'ab',
    sequence: 5n,
    version: 'v',
    created: 100,
    expires: 200,
    objectId: fromHex('0102030405060708'),
    objectHash: new Uint8Array(32).fill(0x11),
    size: 10,
    oti: otiBytes(10, 8, 1),
    blockHashes: [new Uint8Array(32).fill(0x22)],
    rolloutBasisPoints: 2500,
  };
  const expected =
    '01' + // format version
    '02' + '6162' + // product
    u64(5) +
    '01' + '76' + // version string
    u64(100) +
    u64(200) +
    '08' + '0102030405060708' + // object id
    '01' + '11'.repeat(32) + // SHA-256 object hash
    u64(10) +
    '000000000a' + '00' + '0008' + '01' + '0001' + '04' + // OTI: F=10, T=8, Z=1, N=1, Al=4
    '0001' + '22'.repeat(32) + // block hashes
    '02' + // flags: rollout
    '09c4'; // 2500 basis points
  assert.equal(toHex(encodeManifestBody(f)), expected);
  const back = decodeManifestBody(fromHex(expected));
  assert.deepEqual(back, f);
});

test('manifest round trip is canonical: decode(encode(x)) re-encodes to the same bytes', () => {
  const r = release(42n, { size: 50_000, T: 512, Z: 7 });
  const f = { ...r.fields, encryption: { cipher: 'chacha20-poly1305' as const, groupKeyId: fromHex('a1a2a3a4a5a6a7a8') }, symbolDigests: true };
  const body = encodeManifestBody(f);
  assert.deepEqual(encodeManifestBody(decodeManifestBody(body)), body);
  assert.deepEqual(decodeManifestBody(body), f);
});

test('block commitments: ranges follow RFC 6330 4.4.1.2 partition; streaming hasher equals one-shot', () => {
  // F = 10000, T = 256: Kt = 40, Z = 3 -> KL = 14, KS = 13, ZL = 1: blocks of 14, 13, 13 symbols.
  const oti = parseOti(otiBytes(10_000, 256, 3));
  assert.deepEqual(blockRanges(oti), [
    { offset: 0, length: 14 * 256 },
    { offset: 14 * 256, length: 13 * 256 },
    { offset: 27 * 256, length: 10_000 - 27 * 256 },
  ]);
  const r = release(1n);
  const h = new BlockHasher(oti);
  const rnd = prng(3);
  for (let o = 0; o < r.object.length; ) {
    const n = 1 + (rnd() % 999);
    h.update(r.object.subarray(o, o + n));
    o += n;
  }
  assert.deepEqual(h.digest(), r.fields.blockHashes);
  // The commitment binds the block number: the same bytes at another SBN hash differently.
  assert.notEqual(toHex(blockHash(0, r.object.subarray(0, 100))), toHex(blockHash(1, r.object.subarray(0, 100))));
});

test('delegation certificate: layout, signature, and decode', () => {
  const root = keyFromSeed('root');
  const sub = keyFromSeed('signer');
  const cert = issueDelegation(root, sub.publicKey, { products: ['p'], notBefore: 1, notAfter: 2, minSequence: 3n, maxSequence: 4n });
  const tbs = '494f5443' + '01' + '01' + toHex(root.keyId) + toHex(sub.publicKey) + u64(1) + u64(2) + u64(3) + u64(4) + '01' + '0170';
  assert.equal(toHex(cert.subarray(0, cert.length - 64)), tbs);
  const c = verifyCertificate(cert, root.publicKey);
  assert.equal(c.kind, 'delegation');
  assert.deepEqual(decodeCertificateUnverified(cert), c);
  const bad = cert.slice();
  bad[50] = (bad[50] as number) ^ 1;
  assert.throws(() => verifyCertificate(bad, root.publicKey), { code: 'ERR_DELEGATION' });
  assert.throws(() => verifyCertificate(cert, sub.publicKey), { code: 'ERR_DELEGATION' });
});

test('a bit flip in every byte of a signed manifest is rejected with a SecurityError', () => {
  const { signer, trust } = hierarchy();
  const m = signManifest(release(1n, { size: 3000, T: 256, Z: 2 }).fields, signer);
  assert.equal(verifyManifest(m, trust, policy, T0).sequence, 1n);
  const codes = new Map<string, number>();
  for (let i = 0; i < m.length; i++) {
    {
      const b = i % 8;
      const x = m.slice();
      x[i] = (x[i] as number) ^ (1 << b);
      try {
        verifyManifest(x, trust, policy, T0);
        assert.fail(`bit ${b} of byte ${i} flipped and still accepted`);
      } catch (err) {
        assert.ok(err instanceof SecurityError, `byte ${i}: ${String(err)}`);
        codes.set(err.code, (codes.get(err.code) ?? 0) + 1);
      }
    }
  }
  // Flips land in the envelope, the certificate, the signature and the body: all four kinds seen.
  for (const c of ['ERR_MALFORMED', 'ERR_DELEGATION', 'ERR_SIGNATURE']) assert.ok((codes.get(c) ?? 0) > 0, c);
});

test('truncations and random garbage never crash the verifier, only SecurityError', () => {
  const { signer, trust } = hierarchy();
  const m = signManifest(release(1n).fields, signer);
  for (let n = 0; n < m.length; n++) {
    assert.throws(() => verifyManifest(m.subarray(0, n), trust, policy, T0), SecurityError);
  }
  assert.throws(() => verifyManifest(new Uint8Array([...m, 0]), trust, policy, T0), { code: 'ERR_MALFORMED' });
  const rnd = prng(99);
  for (let i = 0; i < 2000; i++) {
    const len = rnd() % 600;
    const x = new Uint8Array(len);
    for (let j = 0; j < len; j++) x[j] = rnd() & 0xff;
    if (i % 2 === 0 && len > 13) x.set(m.subarray(0, 13)); // valid magic and key id, garbage after
    assert.throws(() => verifyManifest(x, trust, policy, T0), SecurityError);
  }
});

test('the signature is checked before the body is decoded: a garbage body signed by an untrusted key reports the key, not the body', () => {
  const { trust } = hierarchy();
  const stranger = keyFromSeed('stranger');
  const m = signManifest(release(1n).fields, stranger);
  // Corrupt the body length-prefixed content (last byte = flags) so decoding would fail.
  const x = m.slice();
  x[x.length - 1] = 0xff;
  assert.throws(() => verifyManifest(x, trust, policy, T0), { code: 'ERR_UNTRUSTED_KEY' });
  // A trusted signer over a body that fails decoding: the signature fails first.
  const { signer } = hierarchy();
  const y = signManifest(release(1n).fields, signer).slice();
  y[y.length - 1] = 0xff;
  assert.throws(() => verifyManifest(y, trust, policy, T0), { code: 'ERR_SIGNATURE' });
});

test('inspectManifest shows fields without trusting them; manifest id is SHA-256 of the body', () => {
  const { signer, trust } = hierarchy();
  const r = release(9n);
  const bytes = signManifest(r.fields, signer);
  const i = inspectManifest(bytes);
  assert.equal(i.fields.version, '1.9.0');
  assert.equal(toHex(i.signerKeyId), toHex(signer.keyId));
  const v = verifyManifest(bytes, trust, policy, T0);
  assert.equal(toHex(v.manifestId), createHash('sha256').update(encodeManifestBody(r.fields)).digest('hex'));
});

test('staged rollout: the signed share selects about that fraction of device ids, differently per release', async () => {
  const { inRollout } = await import('../../src/crypto/manifest.js');
  const a = { ...release(8n).fields, rolloutBasisPoints: 2500 };
  const b = { ...release(9n).fields, rolloutBasisPoints: 2500 };
  let inA = 0;
  let both = 0;
  for (let i = 0; i < 4000; i++) {
    const id = new TextEncoder().encode(`device-${i}`);
    const x = inRollout(a, id);
    if (x) inA += 1;
    if (x && inRollout(b, id)) both += 1;
  }
  assert.ok(inA > 900 && inA < 1100, `${inA} of 4000 at 25 %`);
  assert.ok(both > 150 && both < 350, `independent per release: ${both}`);
  assert.equal(inRollout(release(8n).fields, new Uint8Array(4)), true, 'no share: everyone');
});

test('algorithm agility: unknown signature algorithms are skipped, a known one must verify, one supported is required', () => {
  const { signer, trust } = hierarchy();
  const m = signManifest(release(1n).fields, signer);
  // Split the envelope: header+chain | signatures | body, following the layout in manifest.ts.
  const v = new DataView(m.buffer, m.byteOffset, m.byteLength);
  let p = 13;
  const nCerts = m[p++] as number;
  for (let i = 0; i < nCerts; i++) p += 2 + v.getUint16(p);
  const head = m.subarray(0, p);
  assert.equal(m[p], 1, 'one signature');
  const sigEntry = m.subarray(p + 1, p + 1 + 3 + 64);
  const body = m.subarray(p + 1 + 3 + 64);
  const future = Uint8Array.from([99, 0, 4, 1, 2, 3, 4]); // algorithm 99, 4 bytes
  const build = (...entries: Uint8Array[]) => new Uint8Array([...head, entries.length, ...entries.flatMap((e) => [...e]), ...body]);
  assert.equal(verifyManifest(build(future, sigEntry), trust, policy, T0).sequence, 1n);
  assert.equal(verifyManifest(build(sigEntry, future), trust, policy, T0).sequence, 1n);
  assert.throws(() => verifyManifest(build(future), trust, policy, T0), { code: 'ERR_SIGNATURE' });
  const badSig = sigEntry.slice();
  badSig[10] = (badSig[10] as number) ^ 1;
  assert.throws(() => verifyManifest(build(sigEntry, badSig), trust, policy, T0), { code: 'ERR_SIGNATURE' });
});

// A signed manifest from an encoder without the release-policy fields (flags bits 3-7), its bytes
// fixed here: it must verify and decode to the same fields, and re-sign to the same bytes.
const OLD_MANIFEST =
  '494f544d01f8c1b70ccaeafff60001010040c5913167568561ff9b3f9c999255a0d184014c6cbfdc92650460a0e905be9be02db39907d63b9650573aae8dc68cc8b7313e1f8d2592fc24d2e0802af0bab10500000095010973656e736f722d7632000000000000000705312e372e30000000006ab13b80000000006ad8c880080102030405060708011111111111111111111111111111111111111111111111111111111111111111000000000000000a000000000a00000801000104000122222222222222222222222222222222222222222222222222222222222222220702a1a2a3a4a5a6a7a809c4';

test('old manifest (known bytes, before the policy fields) verifies and decodes identically', () => {
  const key = keyFromSeed('old manifest vector');
  const trust = new TrustStore([{ publicKey: key.publicKey, keyId: key.keyId }]);
  const bytes = fromHex(OLD_MANIFEST);
  const m = verifyManifest(bytes, trust, { product: 'sensor-v2', installedSequence: 6n }, 1790000100);
  const expected: ManifestFields = {
    product: 'sensor-v2',
    sequence: 7n,
    version: '1.7.0',
    created: 1790000000,
    expires: 1792592000,
    objectId: fromHex('0102030405060708'),
    objectHash: new Uint8Array(32).fill(0x11),
    size: 10,
    oti: otiBytes(10, 8, 1),
    blockHashes: [new Uint8Array(32).fill(0x22)],
    encryption: { cipher: 'chacha20-poly1305', groupKeyId: fromHex('a1a2a3a4a5a6a7a8') },
    rolloutBasisPoints: 2500,
    symbolDigests: true,
  };
  assert.deepEqual(inspectManifest(bytes).fields, expected);
  assert.equal(m.deviceClasses, undefined);
  assert.equal(m.rolloutWaves, undefined);
  assert.equal(toHex(signManifest(expected, key)), OLD_MANIFEST);
});

test('release policy fields: byte layout by hand, canonical round trip, signed and verified', () => {
  const base = release(3n).fields;
  const f: ManifestFields = {
    ...base,
    deviceClasses: ['gateway', 'sensor'],
    hardware: ['rev-c'],
    rolloutWaves: [
      { start: 1000, basisPoints: 100 },
      { start: 2000, basisPoints: 2500 },
      { start: 3000, basisPoints: 10000 },
    ],
    activation: { notBefore: 500, notAfter: 9000 },
    switchAt: 4000,
  };
  const body = encodeManifestBody(f);
  const tail =
    'f8' + // flags: bits 3-7
    '02' + '07' + toHex(new TextEncoder().encode('gateway')) + '06' + toHex(new TextEncoder().encode('sensor')) +
    '01' + '05' + toHex(new TextEncoder().encode('rev-c')) +
    '03' + u64(1000) + '0064' + u64(2000) + '09c4' + u64(3000) + '2710' +
    u64(500) + u64(9000) +
    u64(4000);
  assert.ok(toHex(body).endsWith(tail), 'policy fields follow the flags in bit order');
  assert.equal(toHex(body).slice(0, -tail.length), toHex(encodeManifestBody(base)).slice(0, -2), 'everything before the flags is unchanged');
  assert.deepEqual(decodeManifestBody(body), f);
  assert.deepEqual(encodeManifestBody(decodeManifestBody(body)), body);
  const { signer, trust } = hierarchy();
  const m = verifyManifest(signManifest(f, signer), trust, policy, T0);
  assert.deepEqual(m.rolloutWaves, f.rolloutWaves);
  assert.deepEqual(m.deviceClasses, ['gateway', 'sensor']);
  assert.equal(m.switchAt, 4000);
});

test('release policy fields: the encoder refuses and the decoder rejects non-canonical or out-of-range values', () => {
  const base = release(3n).fields;
  const bad: [Partial<ManifestFields>, RegExp][] = [
    [{ deviceClasses: ['sensor', 'gateway'] }, /sorted and unique/],
    [{ deviceClasses: ['a', 'a'] }, /sorted and unique/],
    [{ deviceClasses: [] }, /1 to 16 entries/],
    [{ hardware: ['x'.repeat(65)] }, /1 to 64 bytes/],
    [{ deviceClasses: Array.from({ length: 17 }, (_, i) => `c${String(i).padStart(2, '0')}`) }, /1 to 16 entries/],
    [{ rolloutWaves: [{ start: 10, basisPoints: 500 }, { start: 10, basisPoints: 600 }] }, /starts must increase/],
    [{ rolloutWaves: [{ start: 10, basisPoints: 500 }, { start: 20, basisPoints: 400 }] }, /must not decrease/],
    [{ rolloutWaves: [{ start: 10, basisPoints: 0 }] }, /1 \.\. 10000/],
    [{ rolloutWaves: [{ start: 10, basisPoints: 500 }], rolloutBasisPoints: 100 }, /exclude each other/],
    [{ activation: { notBefore: 10, notAfter: 10 } }, /notBefore must be before notAfter/],
    [{ switchAt: -1 }, /unix seconds/],
  ];
  for (const [extra, want] of bad) assert.throws(() => encodeManifestBody({ ...base, ...extra }), want, JSON.stringify(extra));
  // The decoder, fed the same mistakes by hand (a signer with a broken encoder), rejects them.
  // Everything before the flags byte (base has flags 0, the last byte).
  const prefix = toHex(encodeManifestBody(base)).slice(0, -2);
  assert.deepEqual(decodeManifestBody(fromHex(prefix + '08' + '02' + '0161' + '0162')).deviceClasses, ['a', 'b']);
  const swapped = prefix + '08' + '02' + '0162' + '0161';
  assert.throws(() => decodeManifestBody(fromHex(swapped)), /not sorted and unique/);
  const backwards = prefix + '20' + '02' + u64(20) + '01f4' + u64(10) + '0258';
  assert.throws(() => decodeManifestBody(fromHex(backwards)), /rollout waves out of order/);
  const both = prefix + '22' + '0064' + '01' + u64(10) + '01f4';
  assert.throws(() => decodeManifestBody(fromHex(both)), /rollout waves and a single rollout share/);
  const empty = prefix + '40' + u64(10) + u64(10);
  assert.throws(() => decodeManifestBody(fromHex(empty)), /empty activation window/);
});
