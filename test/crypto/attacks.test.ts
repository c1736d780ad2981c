// The attack matrix of docs/security.md ("Threat model"). Every case runs twice: WITH the defence (the
// attack is rejected with a stable, counted reason) and WITHOUT it (the same input against an
// unprotected receiver succeeds, which proves the test exercises a real attack).
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { checkBlock } from '../../src/crypto/blocks.js';
import { equalBytes } from '../../src/crypto/bytes.js';
import { issueDelegation, issueRootRotation } from '../../src/crypto/certs.js';
import { fountainSealer, ReceiveGuard, SecureSender } from '../../src/crypto/guard.js';
import { fragmentManifest } from '../../src/crypto/fragments.js';
import { generateGroupKey } from '../../src/crypto/keys.js';
import { checkDescription, inspectManifest, signManifest, verifyManifest, type Manifest, type ManifestFields, type VerifyPolicy } from '../../src/crypto/manifest.js';
import { PacketAuth } from '../../src/crypto/packet-auth.js';
import { TrustStore } from '../../src/crypto/trust.js';
import { SecurityError } from '../../src/errors.js';
import { decodePacket, encodeRaw, encodeSymbol, Flags, PacketType } from '../../src/wire/fountain.js';
import { DAY, hierarchy, keyFromSeed, prng, release, T0 } from './fixtures.js';
import { BlockReceiver, CarouselSender } from './sim.js';

const device: VerifyPolicy = { product: 'sensor-v2', installedSequence: 5n, maxSequenceJump: 1000n };

/** What an unprotected receiver does: read the manifest fields and believe them. */
function unprotectedAccept(bytes: Uint8Array): ManifestFields {
  return inspectManifest(bytes).fields;
}

/** Frame a manifest into MANIFEST packets, feed a guard, return the counted rejection code (or the manifest). */
function throughGuard(bytes: Uint8Array, trust: TrustStore, policy: VerifyPolicy, now: number | undefined): { code?: string; manifest?: Manifest; guard: ReceiveGuard } {
  const guard = new ReceiveGuard({ trust, policy });
  const objectId = inspectManifest(bytes).fields.objectId;
  let out: { code?: string; manifest?: Manifest; guard: ReceiveGuard } = { guard };
  for (const body of fragmentManifest(bytes, 300)) {
    const r = guard.filter(encodeRaw(PacketType.MANIFEST, { objectId }, body), now);
    if (r.kind === 'manifest') out = { manifest: r.manifest, guard };
    if (r.kind === 'drop') out = r.code === undefined ? { guard } : { code: r.code, guard };
  }
  return out;
}

function rejects(bytes: Uint8Array, trust: TrustStore, policy: VerifyPolicy, now: number | undefined, code: string): void {
  assert.throws(() => verifyManifest(bytes, trust, policy, now), (err: unknown) => err instanceof SecurityError && err.code === code);
  const g = throughGuard(bytes, trust, policy, now);
  assert.equal(g.code, code);
  assert.equal(g.guard.stats.manifestErrors[code], 1, 'counted once by reason');
  assert.equal(g.guard.stats.drops['manifest-rejected'], 1);
  assert.equal(g.guard.manifest, undefined);
}

describe('attack matrix: manifests', () => {
  test('forged manifest: attacker-made signature / genuine manifest with its object hash swapped', () => {
    const { trust, signer } = hierarchy();
    const evil = release(6n, { seed: 666 });
    const attacker = keyFromSeed('attacker');
    const forged = signManifest(evil.fields, attacker);
    rejects(forged, trust, device, T0, 'ERR_UNTRUSTED_KEY');
    assert.ok(equalBytes(unprotectedAccept(forged).objectHash, evil.fields.objectHash), 'without verification the forgery is taken');

    // The attacker copies the genuine signer's key id and chain but cannot sign.
    const genuine = signManifest(release(6n).fields, signer);
    const tampered = genuine.slice();
    const body = tampered.length - 32 - 2 - 12 - 8 - 32 * 3 - 1; // somewhere inside the body
    tampered[body] = (tampered[body] as number) ^ 0x40;
    rejects(tampered, trust, device, T0, 'ERR_SIGNATURE');
    assert.doesNotThrow(() => unprotectedAccept(tampered));
  });

  test('untrusted key: a self-made root with its own delegation', () => {
    const { trust } = hierarchy();
    const fakeRoot = keyFromSeed('fake root');
    const s = keyFromSeed('fake signer');
    s.chain = [issueDelegation(fakeRoot, s.publicKey, { products: ['*'], notBefore: 0, notAfter: T0 + DAY })];
    const m = signManifest(release(6n).fields, s);
    rejects(m, trust, device, T0, 'ERR_UNTRUSTED_KEY');
    // Without the defence (the attacker's root pinned, i.e. no pinning at all) it verifies.
    assert.equal(verifyManifest(m, new TrustStore([fakeRoot]), device, T0).sequence, 6n);
  });

  test('replay of an old signed manifest (rollback), and of the installed one', () => {
    const { trust, signer } = hierarchy();
    const old = signManifest(release(3n).fields, signer);
    const same = signManifest(release(5n).fields, signer);
    rejects(old, trust, device, T0, 'ERR_ROLLBACK');
    rejects(same, trust, device, T0, 'ERR_ROLLBACK');
    assert.equal(verifyManifest(old, trust, { ...device, installedSequence: 0n }, T0).sequence, 3n, 'without state the old release installs');
  });

  test('fast-forward: a huge sequence number is refused (delegation range, and policy jump for root-signed)', () => {
    const { trust, signer, root } = hierarchy({ maxSequence: 1_000_000n });
    const huge = signManifest(release(2n ** 63n).fields, signer);
    rejects(huge, trust, device, T0, 'ERR_DELEGATION');
    const rootSigned = signManifest(release(2n ** 63n).fields, root, []);
    rejects(rootSigned, trust, device, T0, 'ERR_FAST_FORWARD');
    // Without the defences it installs, and then freezes the device: the genuine next release is a "rollback".
    const open: VerifyPolicy = { product: 'sensor-v2', installedSequence: 5n };
    const accepted = verifyManifest(rootSigned, trust, open, T0);
    const next = signManifest(release(6n).fields, signer);
    assert.throws(() => verifyManifest(next, trust, { ...open, installedSequence: accepted.sequence }, T0), { code: 'ERR_ROLLBACK' });
  });

  test('expired manifest: with a clock, and without one through the persisted time floor', () => {
    const { trust, signer } = hierarchy();
    const stale = signManifest(release(6n, { created: T0 - 40 * DAY, expires: T0 - DAY }).fields, signer);
    rejects(stale, trust, device, T0, 'ERR_EXPIRED');
    // No trusted clock: a later install raised the floor past the expiry.
    rejects(stale, trust, { ...device, timeFloor: T0 }, undefined, 'ERR_EXPIRED');
    // No clock and no floor: expiry cannot be judged; the sequence number still blocks replays.
    assert.equal(verifyManifest(stale, trust, device, undefined).sequence, 6n);
    rejects(stale, trust, { ...device, installedSequence: 6n }, undefined, 'ERR_ROLLBACK');
    // Without the expiry check (clock ignored) the stale release installs.
    assert.equal(verifyManifest(stale, trust, device, undefined).version, '1.6.0');
  });

  test('wrong product: manifest for another device class; signer delegated for another product', () => {
    const { trust, signer } = hierarchy({ products: ['sensor-v2', 'gateway'] });
    const gw = signManifest(release(6n, { product: 'gateway' }).fields, signer);
    rejects(gw, trust, device, T0, 'ERR_WRONG_PRODUCT');
    assert.equal(verifyManifest(gw, trust, { ...device, product: 'gateway' }, T0).product, 'gateway', 'accepted where it belongs');
    const h2 = hierarchy({ products: ['gateway'] });
    const crossed = signManifest(release(6n).fields, h2.signer);
    rejects(crossed, h2.trust, device, T0, 'ERR_DELEGATION');
    assert.equal(unprotectedAccept(crossed).product, 'sensor-v2');
  });

  test('key rotation: old signing key accepted during the window, refused after; revocation; root rotation', () => {
    const root = keyFromSeed('root');
    const trust = new TrustStore([root]);
    const oldKey = keyFromSeed('signer-2025');
    const newKey = keyFromSeed('signer-2026');
    oldKey.chain = [issueDelegation(root, oldKey.publicKey, { products: ['sensor-v2'], notBefore: T0 - 300 * DAY, notAfter: T0 + 10 * DAY })];
    newKey.chain = [issueDelegation(root, newKey.publicKey, { products: ['sensor-v2'], notBefore: T0, notAfter: T0 + 400 * DAY })];
    const byOld = signManifest(release(6n, { expires: T0 + 100 * DAY }).fields, oldKey);
    const byNew = signManifest(release(6n, { expires: T0 + 100 * DAY }).fields, newKey);
    // Rotation window: both accepted.
    assert.equal(verifyManifest(byOld, trust, device, T0 + 5 * DAY).sequence, 6n);
    assert.equal(verifyManifest(byNew, trust, device, T0 + 5 * DAY).sequence, 6n);
    // After the window only the new key.
    rejects(byOld, trust, device, T0 + 11 * DAY, 'ERR_DELEGATION');
    assert.equal(verifyManifest(byNew, trust, device, T0 + 11 * DAY).sequence, 6n);
    // Immediate revocation of a compromised key, inside its validity.
    trust.revoke(oldKey.keyId);
    rejects(byOld, trust, device, T0 + 5 * DAY, 'ERR_REVOKED');
    // Without revocation and expiry (no clock, nothing revoked) the old key still works.
    assert.equal(verifyManifest(byOld, new TrustStore([root]), device, undefined).sequence, 6n);

    // Root rotation: the device pins only root 1; root 2 is introduced by a certificate from root 1.
    const root2 = keyFromSeed('root-2');
    const s3 = keyFromSeed('signer-root2');
    const link = issueRootRotation(root, root2.publicKey, T0 - DAY);
    s3.chain = [link, issueDelegation(root2, s3.publicKey, { products: ['sensor-v2'], notBefore: T0 - DAY, notAfter: T0 + 100 * DAY })];
    const byS3 = signManifest(release(6n).fields, s3);
    assert.equal(toHexId(verifyManifest(byS3, new TrustStore([root]), device, T0).anchorKeyId), toHexId(root.keyId));
    // Without the link certificate root 2 is unknown.
    rejects(signManifest(release(6n).fields, s3, s3.chain.slice(1)), new TrustStore([root]), device, T0, 'ERR_UNTRUSTED_KEY');
    // A retired pin (end of its rotation window) is refused.
    const retiring = new TrustStore();
    retiring.pin(root, T0 - 1);
    rejects(byS3, retiring, device, T0, 'ERR_REVOKED');
    // A delegated signing key cannot delegate further.
    const s4 = keyFromSeed('sub-signer');
    s4.chain = [...newKey.chain, issueDelegation(newKey, s4.publicKey, { products: ['*'], notBefore: 0, notAfter: T0 + DAY })];
    rejects(signManifest(release(6n).fields, s4), trust, device, T0 + DAY / 2, 'ERR_DELEGATION');
  });
});

function toHexId(b: Uint8Array): string {
  return Buffer.from(b).toString('hex');
}

describe('attack matrix: data', () => {
  test('tampered symbol: group-key tag rejects it before the decoder; without the tag it gets in', () => {
    const gk = generateGroupKey();
    const r = release(6n);
    const auth = new PacketAuth(gk, r.fields.objectId, 'mac');
    const sealer = fountainSealer(auth);
    const d = encodeSymbol({ objectId: r.fields.objectId, flags: sealer.flags, trailer: new Uint8Array(sealer.trailerLength) }, { sbn: 0, esi: 1, symbol: r.object.subarray(256, 512) });
    sealer.seal(d);
    const verifier = new PacketAuth(gk, r.fields.objectId, 'mac');
    assert.equal(verifier.openInPlace(d.slice(), 16), true);
    let rejected = 0;
    for (let i = 0; i < d.length; i++) {
      const x = d.slice();
      x[i] = (x[i] as number) ^ 0x01;
      if (!verifier.openInPlace(x, 16)) rejected += 1;
    }
    assert.equal(rejected, d.length, 'every single-byte change is caught');
    // Unprotected: a flipped payload byte decodes as a perfectly good symbol.
    const x = d.slice();
    x[100] = (x[100] as number) ^ 0xff;
    const p = decodePacket(x);
    assert.equal(p.kind, 'symbol');
  });

  test('a block poisoned by an insider is caught by the manifest commitment before it is written', () => {
    const r = release(6n);
    const poisoned = r.object.slice(0, 14 * 256);
    poisoned[7] = (poisoned[7] as number) ^ 1;
    assert.equal(checkBlock(r.fields.blockHashes, 0, poisoned), false);
    assert.equal(checkBlock(r.fields.blockHashes, 0, r.object.subarray(0, 14 * 256)), true);
  });

  test('data longer or shorter than signed; manifest of one release with the data of another', () => {
    const { trust, signer } = hierarchy();
    const a = release(6n);
    const b = release(7n, { size: 12_000 });
    const m = verifyManifest(signManifest(a.fields, signer), trust, device, T0);
    for (const size of [a.fields.size + 1, a.fields.size - 1]) {
      assert.throws(() => checkDescription(m, { size }), { code: 'ERR_MISMATCH' });
    }
    assert.throws(() => checkDescription(m, { objectId: b.fields.objectId, size: b.fields.size, oti: b.fields.oti, hash: b.fields.objectHash }), { code: 'ERR_MISMATCH' });
    // Block level: the last block one byte short, one byte long, or from release B.
    const last = a.fields.blockHashes.length - 1;
    const tail = a.object.subarray(27 * 256);
    assert.equal(checkBlock(m.blockHashes, last, tail), true);
    assert.equal(checkBlock(m.blockHashes, last, tail.subarray(0, tail.length - 1)), false);
    assert.equal(checkBlock(m.blockHashes, last, new Uint8Array([...tail, 0])), false);
    assert.equal(checkBlock(m.blockHashes, 0, b.object.subarray(0, 14 * 256)), false);
    // Through the guard: a description that disagrees with the held manifest never reaches the receiver.
    const guard = new ReceiveGuard({ trust, policy: device });
    for (const body of fragmentManifest(m.bytes)) guard.filter(encodeRaw(PacketType.MANIFEST, { objectId: a.fields.objectId }, body), T0);
    assert.ok(guard.manifest);
    const sender = new CarouselSender({ ...a.fields, size: a.fields.size }, a.object);
    const wrong = new CarouselSender({ ...b.fields, objectId: a.fields.objectId }, b.object);
    const good = guard.filter(sender.next(0).datagram, T0);
    const bad = guard.filter(wrong.next(0).datagram, T0);
    assert.equal(good.kind, 'deliver');
    assert.deepEqual(bad, { kind: 'drop', reason: 'mismatch' });
    // Without the defence the receiver would adopt B's size.
    assert.notEqual(b.fields.size, a.fields.size);
  });
});

/**
 * Run a genuine sender and an injector into one receiver. The injector sees every genuine datagram
 * and, `flood` times per genuine packet, sends a forged symbol for the same (SBN, ESI) that
 * arrives FIRST. `insider` forgeries carry a valid group-key tag.
 */
function runFlood(opts: { insider: boolean; digests: boolean; blockCheck: boolean; groupKey: boolean; flood: number; maxPackets: number }) {
  const { trust, signer } = hierarchy();
  const r = release(6n, { size: 20_000, T: 256, Z: 4 });
  const fields = { ...r.fields, symbolDigests: opts.digests };
  const manifest = signManifest(fields, signer);
  const gk = generateGroupKey();
  const auth = opts.groupKey ? new PacketAuth(gk, fields.objectId, 'mac') : undefined;
  const inner = new CarouselSender(fields, r.object, auth);
  const sender = new SecureSender({ inner, objectId: fields.objectId, manifest, signingKey: signer, digests: opts.digests, manifestEvery: 100, ...(auth ? { sealer: fountainSealer(auth) } : {}) });
  const guard = new ReceiveGuard({ trust, policy: device, ...(opts.groupKey ? { groupKey: gk } : {}) });
  const receiver = new BlockReceiver(fields, opts.blockCheck ? (sbn, data) => guard.checkBlock(sbn, data) : undefined);
  const injectorKey = opts.insider ? gk : generateGroupKey();
  const injector = new PacketAuth(injectorKey, fields.objectId, 'mac');
  const sealer = fountainSealer(injector);
  const rnd = prng(1234);
  let packets = 0;
  let genuine = 0;
  const deliver = (d: Uint8Array) => {
    packets += 1;
    const g = guard.filter(d, T0);
    if (g.kind === 'deliver') receiver.push(g.datagram);
  };
  while (!receiver.complete && packets < opts.maxPackets) {
    const s = sender.next(packets);
    if (!('datagram' in s)) continue;
    const p = decodePacket(s.datagram);
    if (p.kind === 'symbol') {
      for (let i = 0; i < opts.flood; i++) {
        const junk = new Uint8Array(p.symbol.symbol.length).map(() => rnd() & 0xff);
        const h = { objectId: fields.objectId, flags: opts.groupKey ? sealer.flags : 0, trailer: opts.groupKey ? new Uint8Array(sealer.trailerLength) : undefined };
        const f = encodeSymbol(h, { sbn: p.symbol.sbn, esi: p.symbol.esi, symbol: junk });
        if (opts.groupKey) sealer.seal(f);
        deliver(f);
      }
      genuine += 1;
    }
    deliver(s.datagram);
  }
  return { complete: receiver.complete, intact: equalBytes(receiver.output, r.object), guard, receiver, packets, genuine };
}

describe('attack matrix: symbol floods while the genuine sender runs', () => {
  test('outsider flood (no group key): every forged packet dropped as auth; genuine update completes', () => {
    const w = runFlood({ insider: false, digests: false, blockCheck: true, groupKey: true, flood: 3, maxPackets: 20_000 });
    assert.equal(w.complete, true);
    assert.equal(w.intact, true);
    assert.equal(w.guard.stats.drops.auth, 3 * w.genuine);
    assert.equal(w.receiver.stats.blocksRejected, 0);
    // Without the group-key tag the same flood poisons every block: with no block check garbage is written.
    const wo = runFlood({ insider: false, digests: false, blockCheck: false, groupKey: false, flood: 3, maxPackets: 20_000 });
    assert.equal(wo.complete, true);
    assert.equal(wo.intact, false, 'unprotected receiver wrote the attacker data');
  });

  test('insider flood (holds the group key): signed digest batches keep the genuine update completing', () => {
    const w = runFlood({ insider: true, digests: true, blockCheck: true, groupKey: true, flood: 3, maxPackets: 20_000 });
    assert.equal(w.complete, true);
    assert.equal(w.intact, true);
    assert.equal(w.guard.stats.drops.unsigned, 3 * w.genuine, 'every forged symbol counted as unsigned');
    assert.equal(w.guard.stats.drops.auth, 0);
    assert.equal(w.receiver.stats.blocksRejected, 0);
  });

  test('insider flood without digests: block commitments stop garbage being written, but the update is denied', () => {
    const w = runFlood({ insider: true, digests: false, blockCheck: true, groupKey: true, flood: 3, maxPackets: 5_000 });
    assert.equal(w.complete, false, 'the limit of group keys plus block hashes alone');
    assert.ok(w.receiver.stats.blocksRejected > 0);
    assert.equal(w.receiver.stats.blocksWritten, 0, 'nothing poisoned was written');
    const wo = runFlood({ insider: true, digests: false, blockCheck: false, groupKey: true, flood: 3, maxPackets: 20_000 });
    assert.equal(wo.intact, false, 'without block commitments the insider gets garbage written');
  });
});

describe('attack matrix: the guard holds everything back until a verified manifest', () => {
  test('symbols and descriptions before the manifest are dropped and counted, never delivered', () => {
    const { trust, signer } = hierarchy();
    const r = release(6n);
    const guard = new ReceiveGuard({ trust, policy: device });
    const s = new CarouselSender(r.fields, r.object);
    for (let i = 0; i < 10; i++) assert.equal(guard.filter(s.next(0).datagram, T0).kind, 'drop');
    assert.equal(guard.stats.drops['no-manifest'], 10);
    for (const body of fragmentManifest(signManifest(r.fields, signer))) guard.filter(encodeRaw(PacketType.MANIFEST, { objectId: r.fields.objectId }, body), T0);
    assert.equal(guard.filter(s.next(0).datagram, T0).kind, 'deliver');
  });

  test('malformed headers (truncated, bad magic, version or flags, lengths past the datagram) are dropped as malformed, never thrown', () => {
    const { trust, signer } = hierarchy();
    const r = release(6n);
    const gk = generateGroupKey();
    const guard = new ReceiveGuard({ trust, policy: device, groupKey: gk });
    const sealer = fountainSealer(new PacketAuth(gk, r.fields.objectId, 'mac'));
    const sealed = encodeRaw(PacketType.MANIFEST, { objectId: r.fields.objectId, flags: sealer.flags, trailer: new Uint8Array(sealer.trailerLength) }, fragmentManifest(signManifest(r.fields, signer))[0]!);
    sealer.seal(sealed);
    const bad: Uint8Array[] = [
      ...Array.from({ length: 16 }, (_, n) => sealed.slice(0, n)),
      Uint8Array.from(sealed, (b, i) => (i === 0 ? 0x4a : b)),
      Uint8Array.from(sealed, (b, i) => (i === 2 ? 2 : b)),
      Uint8Array.from(sealed, (b, i) => (i === 4 ? b | 0x80 : b)),
      // A trailer of 255 bytes in a datagram of 16 + 254.
      Uint8Array.from(sealed.subarray(0, 16 + 254), (b, i) => (i === 5 ? 255 : b)),
      Uint8Array.from(sealed, (b, i) => (i === 6 ? 0xff : b)),
    ];
    for (const d of bad) assert.deepEqual(guard.filter(d, T0), { kind: 'drop', reason: 'malformed' });
    assert.equal(guard.stats.drops.malformed, bad.length);
    // The same bytes with a sound header get through: the defence, not the input, did the dropping.
    assert.equal(guard.filter(sealed, T0).kind, 'manifest');
    // Without the guard, the transfer layer's own decoder refuses the same headers as DecodeErrors.
    for (const d of bad) assert.throws(() => decodePacket(d));
  });

  test('with a group key, packets without the AUTH flag are refused', () => {
    const { trust, signer } = hierarchy();
    const r = release(6n);
    const gk = generateGroupKey();
    const guard = new ReceiveGuard({ trust, policy: device, groupKey: gk });
    const sealer = fountainSealer(new PacketAuth(gk, r.fields.objectId, 'mac'));
    const plainManifest = encodeRaw(PacketType.MANIFEST, { objectId: r.fields.objectId }, fragmentManifest(signManifest(r.fields, signer))[0]!);
    assert.deepEqual(guard.filter(plainManifest, T0), { kind: 'drop', reason: 'unauthenticated' });
    const sealed = encodeRaw(PacketType.MANIFEST, { objectId: r.fields.objectId, flags: sealer.flags, trailer: new Uint8Array(sealer.trailerLength) }, fragmentManifest(signManifest(r.fields, signer))[0]!);
    sealer.seal(sealed);
    assert.equal(guard.filter(sealed, T0).kind, 'manifest');
    const d = new CarouselSender(r.fields, r.object).next(0).datagram;
    assert.equal(decodePacket(d).flags & Flags.AUTH, 0);
    assert.deepEqual(guard.filter(d, T0), { kind: 'drop', reason: 'unauthenticated' });
    assert.equal(guard.filter(new CarouselSender(r.fields, r.object, new PacketAuth(gk, r.fields.objectId, 'mac')).next(0).datagram, T0).kind, 'deliver');
  });
});
