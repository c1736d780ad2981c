// The security layer around the REAL fountain transfer (FountainSender / FountainReceiver, RaptorQ),
// I/O-free: SecureSender wraps the sender, ReceiveGuard filters in front of the receiver. Seeded
// loss and an insider injector (holding the group key) that floods forged symbols while the
// genuine sender runs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { blockPartition, otiFor, encodeOti } from '../../src/fec/index.js';
import { FountainSender } from '../../src/transfer/sender.js';
import { FileStore, FountainReceiver } from '../../src/transfer/receiver/index.js';
import { BytesSource } from '../../src/transfer/source.js';
import { BlockHasher, parseOti } from '../../src/crypto/blocks.js';
import { equalBytes } from '../../src/crypto/bytes.js';
import { fountainSealer, ReceiveGuard, SecureSender } from '../../src/crypto/guard.js';
import { generateGroupKey, groupKeyIdOf } from '../../src/crypto/keys.js';
import { signManifest } from '../../src/crypto/manifest.js';
import { PacketAuth, type AuthSuite, type MacSuite } from '../../src/crypto/packet-auth.js';
import { decodePacket, encodeSymbol, PacketType } from '../../src/wire/fountain.js';
import { hierarchy, prng, randomBytesSeeded, T0, DAY } from './fixtures.js';

interface Run {
  complete: boolean;
  intact: boolean;
  guard: ReceiveGuard;
  receiver: FountainReceiver;
  forged: number;
  packets: number;
}

function run(opts: { suite: AuthSuite; digests: boolean; flood: number; loss: number; maxPackets: number; seed: number; macOnData?: boolean }): Run {
  const dir = mkdtempSync(join(tmpdir(), 'iotupd-sec-'));
  try {
    const { trust, signer } = hierarchy();
    const object = randomBytesSeeded(150_000, opts.seed);
    const oti = otiFor(object.length, 1184, { maxBlockSymbols: 50, subBlocks: 1, alignment: 4 });
    const otiBytes = encodeOti(oti);
    const gk = generateGroupKey();
    const hash = new Uint8Array(createHash('sha256').update(object).digest());
    // The sender's packet auth must exist before the FountainSender (it seals in its constructor),
    // but the per-object key needs the object id: derive it from a first sender without sealer.
    const probe = new FountainSender({ oti, source: new BytesSource(object), hash });
    const auth = new PacketAuth(gk, probe.objectId, opts.suite);
    const cipher = opts.suite === 'aes-256-gcm' || opts.suite === 'chacha20-poly1305' ? opts.suite : undefined;
    // With digests and no encryption, data packets may go without the group MAC (macOnData false).
    const sealData = opts.macOnData ?? true;
    const inner = new FountainSender({ oti, source: new BytesSource(object), hash, ...(sealData ? { sealer: fountainSealer(auth) } : {}) });
    const hasher = new BlockHasher(parseOti(otiBytes));
    hasher.update(object);
    const manifest = signManifest(
      {
        product: 'sensor-v2',
        sequence: 6n,
        version: '2.0.0',
        created: T0 - DAY,
        expires: T0 + DAY,
        objectId: inner.objectId,
        objectHash: hash,
        size: object.length,
        oti: otiBytes,
        blockHashes: hasher.digest(),
        symbolDigests: opts.digests,
        ...(cipher ? { encryption: { cipher, groupKeyId: groupKeyIdOf(gk) } } : {}),
      },
      signer,
    );
    const sender = new SecureSender({ inner, objectId: inner.objectId, manifest, sealer: fountainSealer(auth), signingKey: signer, digests: opts.digests, manifestEvery: 100 });
    const guard = new ReceiveGuard({ trust, policy: { product: 'sensor-v2', installedSequence: 5n }, groupKey: gk, ...(cipher ? { cipher, requireEncryption: true } : { macSuite: opts.suite as MacSuite }) });
    const out = join(dir, 'fw.bin');
    const receiver = new FountainReceiver({ store: new FileStore({ out }), checkBlock: (sbn, data) => guard.checkBlock(sbn, data) });
    // The insider: same group key, its own sealer (its own nonce salt), forges symbols for any SBN/ESI.
    const insider = fountainSealer(new PacketAuth(gk, inner.objectId, opts.suite));
    const rnd = prng(opts.seed);
    let forged = 0;
    let packets = 0;
    const Z = parseOti(otiBytes).Z;
    let complete = false;
    while (!complete && packets < opts.maxPackets) {
      const s = sender.next(packets);
      if (!('datagram' in s)) continue;
      packets += 1;
      for (let i = 0; i < opts.flood; i++) {
        const f = encodeSymbol(
          { objectId: inner.objectId, flags: insider.flags, trailer: new Uint8Array(insider.trailerLength) },
          { sbn: rnd() % Z, esi: rnd() % 200, symbol: randomBytesSeeded(1184, rnd()) },
        );
        insider.seal(f);
        forged += 1;
        const g = guard.filter(f, T0);
        if (g.kind === 'deliver' && receiver.push(g.datagram) === 'complete') complete = true;
      }
      if ((rnd() % 1000) / 1000 < opts.loss) continue;
      const g = guard.filter(s.datagram, T0);
      if (g.kind === 'deliver' && receiver.push(g.datagram) === 'complete') complete = true;
    }
    const intact = complete && equalBytes(new Uint8Array(readFileSync(out)), object);
    receiver.close();
    return { complete, intact, guard, receiver, forged, packets };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test('real RaptorQ transfer, 20 % loss, insider flooding 2 forged symbols per packet: signed digests keep it intact (MAC suite)', () => {
  const r = run({ suite: 'mac', digests: true, flood: 2, loss: 0.2, maxPackets: 3000, seed: 11 });
  assert.equal(r.complete, true);
  assert.equal(r.intact, true);
  // Forged symbols that came before the first manifest fragment are dropped as no-manifest.
  assert.ok(r.guard.stats.drops['no-manifest'] <= 2);
  assert.equal(r.guard.stats.drops.unsigned + r.guard.stats.drops['no-manifest'], r.forged, 'every forged symbol dropped before the decoder');
  assert.equal(r.receiver.stats.hashMismatches, 0);
  assert.equal(r.guard.stats.blocksRejected, 0);
  assert.ok(r.guard.stats.blocksVerified >= 3);
  assert.equal(r.guard.stats.manifestsVerified, 1);
});

test('same with AES-256-GCM encryption of every packet', () => {
  const r = run({ suite: 'aes-256-gcm', digests: true, flood: 1, loss: 0.1, maxPackets: 3000, seed: 12 });
  assert.equal(r.intact, true);
  assert.equal(r.guard.stats.drops.unsigned + r.guard.stats.drops['no-manifest'], r.forged);
  assert.equal(r.guard.stats.drops.auth, 0);
});

test('without signed digests the insider poisons decoding: every poisoned block is refused before it is written, the update never completes', () => {
  const r = run({ suite: 'mac', digests: false, flood: 2, loss: 0.2, maxPackets: 1000, seed: 13 });
  assert.equal(r.complete, false);
  assert.ok(r.guard.stats.blocksRejected > 0, JSON.stringify(r.guard.stats));
  assert.equal(r.guard.stats.blocksVerified, 0, 'no poisoned block passed');
  assert.equal(r.receiver.stats.hashMismatches, 0, 'caught per block, before the whole-object check');
  assert.equal(r.guard.stats.drops.unsigned, 0);
});

test('Poly1305 tags (no encryption), 10 % loss: every packet tagged and verified, transfer intact', () => {
  const r = run({ suite: 'poly1305', digests: false, flood: 0, loss: 0.1, maxPackets: 3000, seed: 17 });
  assert.equal(r.intact, true);
  assert.equal(r.guard.stats.drops.auth, 0);
  assert.equal(r.guard.stats.drops.unauthenticated, 0);
  assert.ok(r.guard.stats.delivered > 100);
});

test('no flood, ChaCha20-Poly1305, no digests: plain secure transfer completes', () => {
  const r = run({ suite: 'chacha20-poly1305', digests: false, flood: 0, loss: 0.1, maxPackets: 3000, seed: 14 });
  assert.equal(r.intact, true);
  // Everything that reached the receiver was authenticated and decrypted.
  assert.equal(r.receiver.stats.malformed, 0);
  assert.equal(r.guard.stats.drops.auth, 0);
});

test('digests without the group MAC on data packets: insider and outsider forgeries both dropped as unsigned', () => {
  const r = run({ suite: 'mac', digests: true, flood: 2, loss: 0.1, maxPackets: 3000, seed: 15, macOnData: false });
  assert.equal(r.intact, true);
  assert.equal(r.guard.stats.drops.unsigned + r.guard.stats.drops['no-manifest'], r.forged);
  assert.equal(r.guard.stats.drops.unauthenticated, 0, 'signed data packets need no AUTH flag');
});

test('signed digest batches: the last source symbols of a round go out before any repair encoder is built', () => {
  const { signer } = hierarchy();
  const object = randomBytesSeeded(140_000, 16);
  // 119 source symbols (and a description) in 3 blocks: the source round does not end on a
  // 64-datagram batch boundary.
  const oti = otiFor(object.length, 1184, { maxBlockSymbols: 50, subBlocks: 1, alignment: 4 });
  const hash = new Uint8Array(createHash('sha256').update(object).digest());
  const inner = new FountainSender({ oti, source: new BytesSource(object), hash });
  const hasher = new BlockHasher(parseOti(encodeOti(oti)));
  hasher.update(object);
  const manifest = signManifest(
    { product: 'p', sequence: 1n, version: '1', created: T0 - DAY, expires: T0 + DAY, objectId: inner.objectId, objectHash: hash, size: object.length, oti: encodeOti(oti), blockHashes: hasher.digest(), symbolDigests: true },
    signer,
  );
  const sender = new SecureSender({ inner, objectId: inner.objectId, manifest, signingKey: signer, digests: true });
  const sourceSymbols = Math.ceil(object.length / 1184);
  assert.notEqual(sourceSymbols % 64, 0);
  const blocks = blockPartition(oti);
  let sources = 0;
  let repairs = 0;
  let batchesAtLastSource = 0;
  for (let t = 0; t < 1000 && repairs < blocks.length; t++) {
    const s = sender.next(t);
    if (!('datagram' in s)) continue;
    const p = decodePacket(s.datagram);
    if (p.kind !== 'symbol') continue;
    if (p.symbol.esi < (blocks[p.symbol.sbn] as { k: number }).k) {
      sources += 1;
      if (sources === sourceSymbols) {
        assert.equal(inner.stats.encodersBuilt, 0, 'the last source symbol waited for an encoder');
        batchesAtLastSource = sender.stats.batches;
      }
    } else {
      repairs += 1;
    }
  }
  assert.equal(sources, sourceSymbols);
  assert.equal(inner.stats.encodersBuilt, blocks.length);
  // The encoders of the repair round are built in one batch, not one batch per encoder.
  assert.equal(sender.stats.batches, batchesAtLastSource + 1);
});

test('decryptInPlace: a delivered datagram is the same buffer, decrypted; a tampered one is dropped and left as it came', () => {
  const { trust, signer } = hierarchy();
  const object = randomBytesSeeded(60_000, 18);
  const oti = otiFor(object.length, 1184, { maxBlockSymbols: 50, subBlocks: 1, alignment: 4 });
  const hash = new Uint8Array(createHash('sha256').update(object).digest());
  const gk = generateGroupKey();
  const probe = new FountainSender({ oti, source: new BytesSource(object), hash });
  const auth = new PacketAuth(gk, probe.objectId, 'chacha20-poly1305');
  const inner = new FountainSender({ oti, source: new BytesSource(object), hash, sealer: fountainSealer(auth) });
  const hasher = new BlockHasher(parseOti(encodeOti(oti)));
  hasher.update(object);
  const manifest = signManifest(
    {
      product: 'sensor-v2',
      sequence: 6n,
      version: '6',
      created: T0 - DAY,
      expires: T0 + DAY,
      objectId: inner.objectId,
      objectHash: hash,
      size: object.length,
      oti: encodeOti(oti),
      blockHashes: hasher.digest(),
      encryption: { cipher: 'chacha20-poly1305', groupKeyId: groupKeyIdOf(gk) },
    },
    signer,
  );
  const sender = new SecureSender({ inner, objectId: inner.objectId, manifest, sealer: fountainSealer(auth) });
  const guard = new ReceiveGuard({ trust, policy: { product: 'sensor-v2', installedSequence: 5n }, groupKey: gk, cipher: 'chacha20-poly1305', requireEncryption: true, decryptInPlace: true });
  let delivered = 0;
  let tampered = 0;
  let symbols = 0;
  for (let t = 0; t < 400; t++) {
    const s = sender.next(t);
    if (!('datagram' in s)) continue;
    // A copy, as the network gives one: the sender reuses its description buffer, and the guard
    // must own what it decrypts in place.
    const d = s.datagram.slice();
    if (d[3] === PacketType.SYMBOL && ++symbols % 3 === 0) {
      // Flip one ciphertext byte: refused, and the buffer is not touched by the failed open.
      d[d.length - 40] = (d[d.length - 40] as number) ^ 1;
      const before = d.slice();
      const g = guard.filter(d, T0);
      assert.equal(g.kind, 'drop');
      assert.deepEqual(d, before);
      tampered += 1;
      continue;
    }
    const g = guard.filter(d, T0);
    if (g.kind !== 'deliver') continue;
    assert.equal(g.datagram, d, 'no copy');
    const q = decodePacket(g.datagram);
    if (q.kind === 'symbol' && q.symbol.sbn === 0 && q.symbol.esi < (blockPartition(oti)[0] as { k: number }).k) {
      // Source symbol ESI of block 0: its plaintext is those bytes of the object.
      assert.deepEqual(q.symbol.symbol.subarray(0, 100), object.subarray(q.symbol.esi * 1184, q.symbol.esi * 1184 + 100));
      delivered += 1;
    }
  }
  assert.ok(delivered > 10 && tampered > 10, `${delivered} delivered, ${tampered} tampered`);
  assert.equal(guard.stats.drops.auth, tampered);
});
