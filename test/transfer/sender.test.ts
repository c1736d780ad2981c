import { test } from 'node:test';
import assert from 'node:assert/strict';
import { makeObject, newPipeline, newSender } from './sim.js';
import { decodePacket, IPV6_UDP_OVERHEAD, PacketType } from '../../src/wire/fountain.js';
import { blockParams, blockPartition, clearPlanCache, encoderPlan, hasEncoderPlan } from '../../src/fec/index.js';
import { recordEncoderPlans } from '../../src/transfer/plans.js';
import { repairBlocks } from '../../src/transfer/sender.js';
import { Pacer } from '../../src/transfer/pacer.js';
import type { DatagramProducer, SendPipeline } from '../../src/transfer/pipeline.js';
import { FountainReceiver, MemoryStore } from '../../src/transfer/receiver/index.js';
import { planSendSecurity, type SendSecurity } from '../../src/session/send-security.js';
import { ReceiveGuard } from '../../src/crypto/guard.js';
import { generateGroupKey } from '../../src/crypto/keys.js';
import { ManifestAssembler } from '../../src/crypto/fragments.js';
import { DecodeError, UsageError } from '../../src/errors.js';
import { hierarchy, T0 } from '../crypto/fixtures.js';

const OBJ = makeObject(100_000, 256, 100, 4); // 391 symbols in 4 blocks
const BLOCKS = blockPartition(OBJ.oti);

/** All datagrams a producer (a pipeline, or a bare sender) gives in `ms` of virtual time, with their send times. */
function run(s: Pick<DatagramProducer, 'next'>, ms: number, step = 0.01): { t: number; bytes: Uint8Array; kind: string }[] {
  const out: { t: number; bytes: Uint8Array; kind: string }[] = [];
  let now = 0;
  while (now <= ms) {
    const r = s.next(now);
    if ('done' in r) break;
    if ('wait' in r) now += Math.max(step, r.wait);
    else out.push({ t: now, bytes: r.datagram, kind: r.kind });
  }
  return out;
}

function symbols(pkts: { bytes: Uint8Array }[]): { sbn: number; esi: number }[] {
  const out: { sbn: number; esi: number }[] = [];
  for (const p of pkts) {
    const d = decodePacket(p.bytes);
    if (d.kind === 'symbol') out.push({ sbn: d.symbol.sbn, esi: d.symbol.esi });
  }
  return out;
}

const wireBytes = (pkts: { bytes: Uint8Array }[]): number => pkts.reduce((n, p) => n + p.bytes.length + IPV6_UDP_OVERHEAD, 0);

test('round-robin over blocks, source symbols first, then new repair symbols, no ESI repeated', () => {
  const syms = symbols(run(newSender(OBJ, { symbolsPerBlock: 150 }), 1e9));
  assert.equal(syms.length, 150 * BLOCKS.length);
  syms.forEach((s, i) => {
    assert.equal(s.sbn, i % BLOCKS.length, 'block order');
    assert.equal(s.esi, Math.floor(i / BLOCKS.length), 'ESI order: 0, 1, 2, ... (source then repair)');
  });
  const seen = new Set(syms.map((s) => `${s.sbn}/${s.esi}`));
  assert.equal(seen.size, syms.length);
});

test('source symbols carry the object bytes (RFC 6330 4.4.1.2 with N = 1), last one zero padded', () => {
  const pkts = run(newSender(OBJ, { symbolsPerBlock: 100 }), 1e9);
  let checked = 0;
  for (const p of pkts) {
    const d = decodePacket(p.bytes);
    if (d.kind !== 'symbol') continue;
    const b = BLOCKS[d.symbol.sbn];
    assert.ok(b);
    if (d.symbol.esi >= b.k) continue;
    const start = b.offset + d.symbol.esi * 256;
    const real = Math.min(256, b.offset + b.length - start);
    assert.deepEqual(d.symbol.symbol.subarray(0, real), OBJ.data.subarray(start, start + real));
    assert.ok(d.symbol.symbol.subarray(real).every((x) => x === 0));
    checked += 1;
  }
  assert.equal(checked, 391, 'every source symbol was checked');
});

test('cooperating senders use disjoint ESI sequences i + n*j, each sending its share', () => {
  const shares = [0, 1, 2].map((i) => symbols(run(newSender(OBJ, { senderIndex: i, senders: 3, symbolsPerBlock: 50 }), 1e9)));
  shares.forEach((share, i) => {
    assert.equal(share.length, 50 * BLOCKS.length, `sender ${i} sent 50 symbols per block`);
    assert.ok(share.every((s) => s.esi % 3 === i), `sender ${i} sends ESIs ${i} + 3j`);
  });
  const keys = shares.flat().map((s) => `${s.sbn}/${s.esi}`);
  assert.equal(keys.length, 3 * 50 * BLOCKS.length);
  assert.equal(new Set(keys).size, keys.length, 'no symbol sent twice');
});

test('the producer does not pace: a bare FountainSender never says wait while it has symbols', () => {
  const s = newSender(OBJ, { symbolsPerBlock: 120 });
  let n = 0;
  for (let r = s.next(0); !('done' in r); r = s.next(0)) {
    assert.ok('datagram' in r, 'no wait from the producer');
    n += 1;
  }
  assert.equal(s.stats.symbols, 120 * BLOCKS.length);
  assert.equal(n, s.stats.packets);
});

test('pacer: the pipeline honours the rate over simulated time, at any clock granularity', () => {
  const rate = 8_000_000; // 1 MB/s: 1000 bytes a millisecond
  for (const step of [0.01, 1, 3]) {
    const p = newPipeline(OBJ, { rateBps: rate });
    const pkts = run(p, 10_000, step);
    const wire = wireBytes(pkts);
    // Within the bucket: burst + rate x t + one datagram. Below it by at most a step's worth of tokens per wait.
    assert.ok(wire <= p.pacer.burstBytes + 10_000 * 1000 + 1000, `step ${step}: sent ${wire} bytes`);
    assert.ok(wire >= 10_000 * 1000 * 0.99, `step ${step}: sent ${wire} bytes`);
    assert.equal(p.pacer.stats.wireBytes, wire, 'the pacer charged every datagram');
    // Every second of the run on its own keeps to the rate as well (after the initial burst).
    for (let sec = 1; sec < 10; sec++) {
      const inSec = wireBytes(pkts.filter((x) => x.t >= sec * 1000 && x.t < (sec + 1) * 1000));
      assert.ok(inSec <= 1_000_000 + p.pacer.burstBytes + 1000 && inSec >= 1_000_000 * 0.98, `step ${step}, second ${sec}: ${inSec} bytes`);
    }
  }
});

test('pacer: burst depth is 4 ms at the rate, at least 8 datagrams; a larger datagram borrows and the next waits', () => {
  const gate = 1000 + IPV6_UDP_OVERHEAD;
  const burstOf = (pacer: Pacer, now = 0): number => {
    let n = 0;
    while (pacer.delay(now) === 0 && n < 1e6) {
      pacer.take(1000);
      n++;
    }
    return n;
  };
  // 8 Mbit/s: 4 ms is 4000 bytes, less than 8 datagrams.
  const slow = new Pacer({ rateBps: 8e6, packetBytes: 1000 });
  assert.equal(slow.burstBytes, 8 * gate);
  assert.equal(burstOf(slow), 8);
  // 1 Gbit/s: 4 ms is 500 000 bytes.
  const fast = new Pacer({ rateBps: 1e9, packetBytes: 1000 });
  assert.equal(fast.burstBytes, 500_000);
  assert.equal(burstOf(fast), Math.floor(500_000 / gate));
  const deep = new Pacer({ rateBps: 8e6, packetBytes: 1000, burstBytes: 20_000 });
  assert.equal(burstOf(deep), Math.floor(20_000 / gate));
  // Empty bucket: one datagram's worth comes back after gate / rate ms, then exactly one goes.
  const wait = deep.delay(0);
  assert.ok(wait > 0 && wait <= gate / 1000 + 1e-9, `waits ${wait} ms`);
  assert.equal(deep.delay(wait), 0);
  deep.take(1000);
  assert.ok(deep.delay(wait) > 0);
  // After seven regular datagrams the bucket holds exactly one more; a 3000-byte datagram then
  // leaves it 2000 bytes short, and the next waits for those and its own 1048: 3.048 ms.
  const debt = new Pacer({ rateBps: 8e6, packetBytes: 1000 });
  for (let i = 0; i < 7; i++) {
    assert.equal(debt.delay(0), 0);
    debt.take(1000);
  }
  assert.equal(debt.delay(0), 0);
  debt.take(3000);
  assert.ok(Math.abs(debt.delay(0) - 3.048) < 1e-6, `waits ${debt.delay(0)} ms`);
  // However long the pause, the bucket holds no more than its depth.
  assert.equal(burstOf(debt, 1e9), 8);
});

test('pacer: a rate that is not positive and finite, or a burst smaller than a datagram, is a UsageError', () => {
  for (const rateBps of [0, -1, Number.NaN, Number.POSITIVE_INFINITY]) assert.throws(() => new Pacer({ rateBps, packetBytes: 1000 }), UsageError, String(rateBps));
  assert.throws(() => new Pacer({ rateBps: 1e6, packetBytes: 1000, burstBytes: 1000 }), UsageError);
  assert.throws(() => new Pacer({ rateBps: 1e6, packetBytes: 0 }), UsageError);
  assert.throws(() => newPipeline(OBJ, { rateBps: 0 }), UsageError);
});

test('description first, then at least every 256 symbols and every second', () => {
  const slow = run(newPipeline(OBJ, { rateBps: 100_000 }), 5000);
  assert.equal(decodePacket((slow[0] as { bytes: Uint8Array }).bytes).kind, 'description');
  const descTimes = slow.filter((p) => decodePacket(p.bytes).kind === 'description').map((p) => p.t);
  for (let i = 1; i < descTimes.length; i++) assert.ok((descTimes[i] as number) - (descTimes[i - 1] as number) <= 1000 + 50);
  assert.ok(descTimes.length >= 5);
  const fast = run(newSender(OBJ, { symbolsPerBlock: 300 }), 1e9);
  assert.equal(symbols(fast).length, 300 * BLOCKS.length);
  let gap = 0;
  for (const p of fast) {
    if (decodePacket(p.bytes).kind === 'description') gap = 0;
    else assert.ok(++gap <= 256);
  }
});

test('with a tiny encoder cache, repair symbols come in per-block batches and encoders are built rarely', () => {
  const s = newSender(OBJ, { encoderCacheBytes: 1, symbolsPerBlock: 100 + 128 });
  const syms = symbols(run(s, 1e9));
  const repair = syms.filter((x) => x.esi >= 100);
  let switches = 0;
  for (let i = 1; i < repair.length; i++) if (repair[i]?.sbn !== repair[i - 1]?.sbn) switches++;
  assert.ok(switches <= repair.length / 32, `switched block ${switches} times over ${repair.length} repair symbols`);
  assert.ok(s.stats.encodersBuilt <= Math.ceil(repair.length / 64) + BLOCKS.length);
  assert.equal(new Set(syms.map((x) => `${x.sbn}/${x.esi}`)).size, syms.length);
  // One encoder for four blocks: a batch is 64 x 4 = 256 repair symbols per visit, so each
  // block's encoder is built about once here (with batches of 64, three times).
  const k0 = BLOCKS[0]?.k ?? 0;
  const firstRun = syms.filter((x) => x.sbn === 0 && x.esi >= k0 && x.esi < k0 + 256).length;
  assert.equal(firstRun, 256);
  let first = 1;
  const rep0 = syms.findIndex((x) => x.sbn === 0 && x.esi >= k0);
  while (syms[rep0 + first]?.sbn === 0) first++;
  assert.equal(first, 256, 'the first visit sends 256 repair symbols of block 0 in a row');
  assert.ok(s.stats.encodersBuilt <= BLOCKS.length + 1, `${s.stats.encodersBuilt} encoders built`);
});

/** Like run(), but calls prepare() whenever the pacer says wait (as the socket driver does); counts the calls that worked. */
function runPreparing(p: SendPipeline, ms: number): { pkts: { t: number; bytes: Uint8Array }[]; slices: number; builtInNext: number } {
  const s = p.sender;
  const pkts: { t: number; bytes: Uint8Array }[] = [];
  let now = 0;
  let slices = 0;
  let builtInNext = 0;
  while (now <= ms) {
    const before = s.stats.encodersBuilt - s.stats.encodersPrepared;
    const r = p.next(now);
    builtInNext += s.stats.encodersBuilt - s.stats.encodersPrepared - before;
    if ('done' in r) break;
    if ('wait' in r) {
      if (p.prepare()) slices++;
      now += Math.max(0.01, r.wait);
    } else pkts.push({ t: now, bytes: r.datagram });
  }
  return { pkts, slices, builtInNext };
}

test('prepare() builds the repair encoders in slices while the pacer waits: the repair round builds none, same datagrams', () => {
  const opts = { symbolsPerBlock: 130, rateBps: 1e6 };
  const plain = run(newPipeline(OBJ, opts), 1e9);
  const p = newPipeline(OBJ, opts);
  const s = p.sender;
  const { pkts, slices, builtInNext } = runPreparing(p, 1e9);
  assert.equal(symbols(pkts).length, 130 * BLOCKS.length);
  assert.equal(s.stats.encodersPrepared, BLOCKS.length, 'every block encoder was prepared');
  assert.equal(builtInNext, 0, 'no encoder was built inside next()');
  assert.ok(slices > BLOCKS.length * 2, `built in ${slices} slices`);
  assert.equal(s.prepare(), false, 'nothing left to prepare');
  assert.deepEqual(pkts.map((p) => p.bytes), plain.map((p) => p.bytes), 'the same datagrams in the same order');
});

test('prepare() has nothing to do when no repair symbol will be sent, and stops at the encoder cache size', () => {
  const sourceOnly = newSender(OBJ, { symbolsPerBlock: 90 });
  assert.equal(sourceOnly.prepare(), false);
  const tiny = newSender(OBJ, { encoderCacheBytes: 1 });
  let n = 0;
  while (tiny.prepare() && n < 1e6) n++;
  assert.equal(tiny.stats.encodersPrepared, 1, 'one encoder fits');
});

test('recordEncoderPlans: a worker records the encoder plans, the same ones this thread would, into this thread cache', async () => {
  const ks = [1771, 300];
  clearPlanCache();
  const rec = recordEncoderPlans(ks);
  await rec.done;
  assert.equal(rec.adopted, 2);
  const kPrimes = ks.map((k) => blockParams(k).kPrime);
  for (const kp of kPrimes) assert.ok(hasEncoderPlan(kp), `K' = ${kp} adopted`);
  const adopted = kPrimes.map((kp) => encoderPlan(blockParams(kp)));
  clearPlanCache();
  for (const [i, kp] of kPrimes.entries()) {
    const local = encoderPlan(blockParams(kp));
    const got = adopted[i] as ReturnType<typeof encoderPlan>;
    assert.equal(got.plan.length, local.plan.length);
    assert.deepEqual(got.plan.ops, local.plan.ops);
    assert.deepEqual(got.layout, local.layout);
    assert.equal(got.inactive, local.inactive);
  }
  // Nothing to do for cached plans; a cancelled recording adopts nothing.
  recordEncoderPlans(ks).cancel();
  clearPlanCache();
  const cancelled = recordEncoderPlans([1000]);
  cancelled.cancel();
  await cancelled.done;
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(hasEncoderPlan(blockParams(1000).kPrime), false);
  // A plan this thread recorded while the worker ran (an encoder due early) stays, and is not
  // counted as the worker's.
  clearPlanCache();
  const late = recordEncoderPlans([1000]);
  const own = encoderPlan(blockParams(blockParams(1000).kPrime));
  await late.done;
  assert.equal(late.adopted, 0);
  assert.equal(encoderPlan(blockParams(blockParams(1000).kPrime)), own);
});

test('repairBlocks: the blocks a sender will send repair symbols for, given where symbolsPerBlock stops it', () => {
  const ks = BLOCKS.map((b) => b.k);
  const minK = Math.min(...ks);
  const maxK = Math.max(...ks);
  assert.equal(repairBlocks(BLOCKS, {}).length, BLOCKS.length, 'a sender that runs forever');
  assert.deepEqual(repairBlocks(BLOCKS, { symbolsPerBlock: minK }), [], 'ESIs 0..minK-1: source symbols only');
  assert.deepEqual(repairBlocks(BLOCKS, { symbolsPerBlock: maxK + 1 }), BLOCKS, 'ESI maxK reaches every block');
  // Sender 1 of 2 sends ESIs 1, 3, 5, ... (K = 98, 98, 98, 97 here): 48 of them end at ESI 95,
  // 49 at ESI 97, a repair symbol of the last block only.
  assert.deepEqual(ks, [98, 98, 98, 97]);
  assert.deepEqual(repairBlocks(BLOCKS, { senderIndex: 1, senders: 2, symbolsPerBlock: 48 }), []);
  assert.deepEqual(repairBlocks(BLOCKS, { senderIndex: 1, senders: 2, symbolsPerBlock: 49 }), [BLOCKS[3]]);
  assert.deepEqual(repairBlocks(BLOCKS, { symbolsPerBlock: 1, startRound: maxK }), BLOCKS, 'a restarted sender past the source round');
});

/**
 * A pipeline with the security stage planned by planSendSecurity, run on a virtual clock, every
 * datagram (a copy, as the network gives) filtered by a receive guard in front of a receiver.
 */
function securePipelineRun(security: SendSecurity, guardOpts: Partial<ConstructorParameters<typeof ReceiveGuard>[0]>) {
  const { trust } = hierarchy();
  const plan = planSendSecurity(security);
  // The block commitments come from the sender's hashing pass (createFileSender's observe): the same bytes here.
  plan.observe?.(OBJ.oti)(OBJ.data);
  const rateBps = 8e6;
  const pipeline = newPipeline(OBJ, { rateBps, ...(plan.sealer ? { sealer: plan.sealer } : {}), stages: [plan.stage] });
  const guard = new ReceiveGuard({ trust, policy: { product: 'sensor-v2', installedSequence: 5n }, ...guardOpts });
  const store = new MemoryStore();
  const receiver = new FountainReceiver({ store, checkBlock: (sbn, data) => guard.checkBlock(sbn, data) });
  const kinds: Record<string, number> = {};
  let now = 0;
  let wire = 0;
  let complete = false;
  while (!complete && now < 30_000) {
    const s = pipeline.next(now);
    if ('done' in s) break;
    if ('wait' in s) {
      now += s.wait;
      continue;
    }
    kinds[s.kind] = (kinds[s.kind] ?? 0) + 1;
    wire += s.datagram.length + IPV6_UDP_OVERHEAD;
    const g = guard.filter(s.datagram.slice(), T0);
    if (g.kind === 'deliver' && receiver.push(g.datagram, now) === 'complete') complete = true;
  }
  const intact = complete && store.result !== undefined && Buffer.from(store.result).equals(Buffer.from(OBJ.data));
  receiver.close();
  return { complete, intact, guard, kinds, now, wire, pipeline };
}

test('pipeline with the security stage: every datagram verifies with the receive guard, the object arrives intact, paced as one stream', () => {
  const { signer } = hierarchy();
  const gk = generateGroupKey();
  const release = { signingKey: signer, product: 'sensor-v2', sequence: 6n, created: T0 - 60, expires: T0 + 86400, groupKey: gk };
  const variants: { name: string; security: SendSecurity; guard: Partial<ConstructorParameters<typeof ReceiveGuard>[0]> }[] = [
    { name: 'encrypted, signed digests', security: { ...release, encrypt: true, digests: true }, guard: { groupKey: gk, cipher: 'chacha20-poly1305' as const, requireEncryption: true } },
    { name: 'HMAC tags', security: { ...release, mac: 'mac' as const }, guard: { groupKey: gk, macSuite: 'mac' as const } },
    { name: 'Poly1305 tags, digests (data untagged)', security: { ...release, digests: true }, guard: { groupKey: gk, macSuite: 'poly1305' as const, requireDigests: true } },
  ];
  for (const v of variants) {
    const r = securePipelineRun(v.security, v.guard);
    assert.ok(r.intact, `${v.name}: complete and intact`);
    const drops = Object.entries(r.guard.stats.drops).filter(([, n]) => n > 0);
    assert.deepEqual(drops, [], `${v.name}: the guard dropped none of the pipeline's datagrams`);
    assert.equal(r.guard.stats.manifestsVerified, 1, v.name);
    assert.equal(r.guard.stats.blocksVerified, BLOCKS.length, `${v.name}: every block checked against its commitment`);
    assert.ok((r.kinds.manifest ?? 0) >= 1 && (r.kinds.symbol ?? 0) >= 391, `${v.name}: ${JSON.stringify(r.kinds)}`);
    if (v.security.digests) assert.ok((r.kinds.digests ?? 0) >= 2 * Math.ceil(391 / 64), `${v.name}: digest batches sent, ${JSON.stringify(r.kinds)}`);
    else assert.equal(r.kinds.digests, undefined);
    // One token bucket for the whole stream, MANIFEST and SIGNATURE packets included.
    assert.equal(r.pipeline.pacer.stats.wireBytes, r.wire);
    assert.ok(r.wire <= r.pipeline.pacer.burstBytes + (r.now * 8e6) / 8 / 1000 + 1500, `${v.name}: ${r.wire} bytes in ${r.now} ms`);
  }
  // The same stream under another group key: nothing gets through.
  const other = securePipelineRun({ ...release, mac: 'mac' }, { groupKey: generateGroupKey(), macSuite: 'mac' });
  assert.equal(other.complete, false);
  assert.equal(other.guard.stats.delivered, 0);
  assert.ok(other.guard.stats.drops.auth > 0);
});

test('send security: options that do not fit together are typed errors, before anything is sent', () => {
  const { signer } = hierarchy();
  const gk = generateGroupKey();
  const usage = (s: SendSecurity, message: RegExp) => assert.throws(() => planSendSecurity(s), (e: unknown) => e instanceof UsageError && message.test(e.message), message.source);
  usage({}, /needs a signingKey or a signed manifest/);
  usage({ groupKey: gk }, /need a signed manifest/);
  usage({ signingKey: signer, product: 'p', sequence: 1n, encrypt: true }, /encrypt needs groupKey/);
  usage({ manifest: new Uint8Array(10), digests: true }, /digests needs signingKey/);
  usage({ signingKey: signer, product: 'p' }, /needs product and sequence/);
  usage({ signingKey: signer, product: 'p', sequence: 0n }, /sequence must be/);
  usage({ signingKey: signer, product: 'p', sequence: 2n ** 64n }, /sequence must be/);
  usage({ signingKey: signer, product: 'p', sequence: 1n, rolloutBasisPoints: 10001 }, /rolloutBasisPoints/);
  usage({ signingKey: signer, product: 'p', sequence: 1n, expires: -1 }, /expires/);
  usage({ signingKey: signer, product: 'p', sequence: 1n, cipher: 'des' as never }, /cipher must be/);
  usage({ signingKey: signer, product: 'p', sequence: 1n, mac: 'crc' as never }, /mac must be/);
  assert.throws(() => planSendSecurity({ manifest: new Uint8Array(10) }), DecodeError, 'a manifest that does not parse, before the file is hashed');
  // A group key of the wrong length is a SecurityError (ERR_KEY).
  assert.throws(() => planSendSecurity({ signingKey: signer, product: 'p', sequence: 1n, groupKey: new Uint8Array(16) }), (e: unknown) => e instanceof Error && (e as { code?: string }).code === 'ERR_KEY');
  // A manifest signed for another object is refused when the stage is built for this one.
  const plan = planSendSecurity({ signingKey: signer, product: 'sensor-v2', sequence: 6n });
  plan.observe?.(OBJ.oti)(OBJ.data);
  const fragments = run(newPipeline(OBJ, { stages: [plan.stage] }), 1).filter((p) => p.kind === 'manifest');
  assert.ok(fragments.length > 0, 'the stage sent its manifest first');
  const assembler = new ManifestAssembler();
  let bytes: Uint8Array | null = null;
  for (const f of fragments) {
    const pkt = decodePacket(f.bytes);
    assert.equal(pkt.type, PacketType.MANIFEST);
    if (pkt.kind === 'other') bytes = assembler.push(pkt.body) ?? bytes;
  }
  assert.ok(bytes, 'the fragments assemble to the manifest');
  const other = makeObject(50_000, 256, 100, 9);
  assert.throws(() => newPipeline(other, { stages: [planSendSecurity({ manifest: bytes }).stage] }), (e: unknown) => e instanceof UsageError && /the manifest is for object/.test(e.message));
  // The right object takes it as it is.
  assert.ok(run(newPipeline(OBJ, { stages: [planSendSecurity({ manifest: bytes }).stage] }), 50).some((p) => p.kind === 'symbol'));
});
