import { test } from 'node:test';
import assert from 'node:assert/strict';
import { makeObject, newSender } from './sim.js';
import { decodePacket, IPV6_UDP_OVERHEAD } from '../../src/wire/fountain.js';
import { blockParams, blockPartition, clearPlanCache, encoderPlan, hasEncoderPlan } from '../../src/fec/index.js';
import { recordEncoderPlans } from '../../src/transfer/plans.js';
import { repairBlocks, type FountainSender } from '../../src/transfer/sender.js';

const OBJ = makeObject(100_000, 256, 100, 4); // 391 symbols in 4 blocks
const BLOCKS = blockPartition(OBJ.oti);

/** All datagrams sent in `ms` of virtual time, with their send times. */
function run(s: FountainSender, ms: number, step = 0.01): { t: number; bytes: Uint8Array }[] {
  const out: { t: number; bytes: Uint8Array }[] = [];
  let now = 0;
  while (now <= ms) {
    const r = s.next(now);
    if ('done' in r) break;
    if ('wait' in r) now += Math.max(step, r.wait);
    else out.push({ t: now, bytes: r.datagram });
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
  }
});

test('cooperating senders use disjoint ESI sequences i + n*j', () => {
  const a = symbols(run(newSender(OBJ, { senderIndex: 0, senders: 3, symbolsPerBlock: 50 }), 1e9));
  const b = symbols(run(newSender(OBJ, { senderIndex: 1, senders: 3, symbolsPerBlock: 50 }), 1e9));
  const c = symbols(run(newSender(OBJ, { senderIndex: 2, senders: 3, symbolsPerBlock: 50 }), 1e9));
  const keys = [...a, ...b, ...c].map((s) => `${s.sbn}/${s.esi}`);
  assert.equal(new Set(keys).size, keys.length);
  assert.ok(b.every((s) => s.esi % 3 === 1));
});

test('token bucket: bytes on the wire in one virtual second match the rate', () => {
  const rate = 8_000_000; // 1 MB/s
  const pkts = run(newSender(OBJ, { rateBps: rate }), 1000);
  const wire = pkts.reduce((n, p) => n + p.bytes.length + IPV6_UDP_OVERHEAD, 0);
  assert.ok(wire <= 1_000_000 * 1.01 + 32 * 1024, `sent ${wire} bytes`);
  assert.ok(wire >= 1_000_000 * 0.97, `sent ${wire} bytes`);
});

test('description first, then at least every 256 symbols and every second', () => {
  const slow = run(newSender(OBJ, { rateBps: 100_000 }), 5000);
  assert.equal(decodePacket((slow[0] as { bytes: Uint8Array }).bytes).kind, 'description');
  const descTimes = slow.filter((p) => decodePacket(p.bytes).kind === 'description').map((p) => p.t);
  for (let i = 1; i < descTimes.length; i++) assert.ok((descTimes[i] as number) - (descTimes[i - 1] as number) <= 1000 + 50);
  assert.ok(descTimes.length >= 5);
  const fast = run(newSender(OBJ, { symbolsPerBlock: 300 }), 1e9);
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
function runPreparing(s: FountainSender, ms: number): { pkts: { t: number; bytes: Uint8Array }[]; slices: number; builtInNext: number } {
  const pkts: { t: number; bytes: Uint8Array }[] = [];
  let now = 0;
  let slices = 0;
  let builtInNext = 0;
  while (now <= ms) {
    const before = s.stats.encodersBuilt - s.stats.encodersPrepared;
    const r = s.next(now);
    builtInNext += s.stats.encodersBuilt - s.stats.encodersPrepared - before;
    if ('done' in r) break;
    if ('wait' in r) {
      if (s.prepare()) slices++;
      now += Math.max(0.01, r.wait);
    } else pkts.push({ t: now, bytes: r.datagram });
  }
  return { pkts, slices, builtInNext };
}

test('prepare() builds the repair encoders in slices while the pacer waits: the repair round builds none, same datagrams', () => {
  const opts = { symbolsPerBlock: 130, rateBps: 1e6 };
  const plain = run(newSender(OBJ, opts), 1e9);
  const s = newSender(OBJ, opts);
  const { pkts, slices, builtInNext } = runPreparing(s, 1e9);
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
