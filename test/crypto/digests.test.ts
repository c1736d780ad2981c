// Signed digest batches and manifest fragments, on their own.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { DigestSigner, DigestVerifier } from '../../src/crypto/digests.js';
import { fragmentManifest, ManifestAssembler } from '../../src/crypto/fragments.js';
import { signManifest } from '../../src/crypto/manifest.js';
import { hierarchy, keyFromSeed, prng, randomBytesSeeded, release } from './fixtures.js';

const objectId = Uint8Array.of(1, 2, 3, 4, 5, 6, 7, 8);

test('digest batches: signed datagrams accepted, others not; forged, foreign and duplicate batches counted; window bounded', () => {
  const { signer } = hierarchy();
  const s = new DigestSigner(signer, objectId);
  const v = new DigestVerifier(signer.publicKey, objectId, 2);
  const dgrams = Array.from({ length: 3 }, (_, b) => Array.from({ length: 64 }, (_, i) => randomBytesSeeded(1200, b * 100 + i + 1)));
  const batches = dgrams.map((d) => s.sign(d));
  // The wire layout (digests.ts): 18-byte fixed part, the object id (length byte, 8 bytes), then
  // SHA-256(datagram)[0..16] for each datagram, computed here independently.
  const first = batches[0]!;
  assert.equal(first[5], 64);
  for (const i of [0, 1, 63]) {
    const expected = createHash('sha256').update(dgrams[0]![i]!).digest().subarray(0, 16);
    assert.deepEqual(first.subarray(27 + 16 * i, 27 + 16 * (i + 1)), new Uint8Array(expected), `digest ${i}`);
  }
  assert.equal(v.addBatch(batches[0]!), 'accepted');
  assert.equal(v.addBatch(batches[0]!), 'duplicate');
  assert.ok(dgrams[0]!.every((d) => v.check(d)));
  assert.equal(v.check(dgrams[1]![0]!), false, 'not yet signed for');
  const changed = dgrams[0]![5]!.slice();
  changed[600] = (changed[600] as number) ^ 1;
  assert.equal(v.check(changed), false, 'one bit changed');
  // A batch signed by another key with our signer's key id spliced in: bad signature, remembered.
  const mallory = new DigestSigner({ ...keyFromSeed('mallory'), keyId: signer.keyId }, objectId);
  const forged = mallory.sign(dgrams[2]!);
  assert.equal(v.addBatch(forged), 'bad-signature');
  assert.equal(v.addBatch(forged), 'bad-signature');
  assert.equal(v.stats.badSignatures, 2);
  assert.equal(v.check(dgrams[2]![0]!), false);
  assert.equal(new DigestVerifier(signer.publicKey, Uint8Array.of(9, 9, 9, 9, 9, 9, 9, 9)).addBatch(batches[0]!), 'foreign');
  // Window of 2 batches: after the third, the first batch's digests are gone.
  assert.equal(v.addBatch(batches[1]!), 'accepted');
  assert.equal(v.addBatch(batches[2]!), 'accepted');
  assert.equal(v.check(dgrams[0]![0]!), false);
  assert.equal(v.check(dgrams[2]![63]!), true);
  // Malformed: every truncation.
  for (let n = 0; n < batches[0]!.length; n += 7) assert.equal(new DigestVerifier(signer.publicKey, objectId).addBatch(batches[0]!.subarray(0, n)), 'malformed');
});

test('manifest fragments: any order, duplicates, interleaved forged fragments in their own slot; corrupt assembly refused', () => {
  const { signer } = hierarchy();
  const m = signManifest(release(3n, { size: 200_000, T: 256, Z: 40 }).fields, signer);
  const frags = fragmentManifest(m, 200);
  assert.ok(frags.length > 5);
  const forged = fragmentManifest(randomBytesSeeded(m.length, 5), 200);
  const a = new ManifestAssembler();
  const rnd = prng(8);
  const order = [...frags.keys()].sort(() => (rnd() & 1 ? 1 : -1));
  let got: Uint8Array | null = null;
  for (const i of order) {
    a.push(forged[i]!);
    got = a.push(frags[i]!) ?? got;
    a.push(frags[i]!);
  }
  assert.deepEqual(got, m);
  // A fragment whose bytes were altered in flight: the digest check of the whole refuses it.
  const b = new ManifestAssembler();
  let out: Uint8Array | null = null;
  frags.forEach((f, i) => {
    const x = f.slice();
    if (i === 1) x[30] = (x[30] as number) ^ 1;
    out = b.push(x) ?? out;
  });
  assert.equal(out, null);
  assert.throws(() => b.push(new Uint8Array(10)), { code: 'ERR_DECODE' });
});
