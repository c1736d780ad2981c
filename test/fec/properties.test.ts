// Property tests of the block and object codecs: random erasures, duplicates, reordering, mixed
// source and repair symbols, K' boundaries, symbol sizes from 4 to 65535, sub-blocks, hostile input.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FecError } from '../../src/errors.js';
import { BlockDecoder, BlockEncoder, EncoderBuild, ObjectDecoder, ObjectEncoder, blockPartition, otiFor } from '../../src/fec/index.js';
import { SYSTEMATIC } from '../../src/fec/rfc6330-data.js';
import { prng, randomBytes } from './helpers.js';

const fecCode = (code: string) => (e: unknown) => e instanceof FecError && e.code === code;

function shuffle<T>(a: T[], rnd: () => number): T[] {
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(rnd() * (i + 1));
    [a[i], a[j]] = [a[j]!, a[i]!];
  }
  return a;
}

/** Feeds a random stream (erasures, duplicates, reordering, source+repair) until decoded. */
function roundTrip(k: number, t: number, len: number, rnd: () => number, opts: { sourceFraction: number; dupRate: number; subBlocks?: number; alignment?: number }): number {
  const data = randomBytes(len, rnd);
  const enc = new BlockEncoder(data, k, t, opts.subBlocks ?? 1, opts.alignment ?? 1);
  const dec = new BlockDecoder(k, t, len, opts.subBlocks ?? 1, opts.alignment ?? 1);
  const chosen = new Set<number>();
  for (let i = 0; i < k; i++) if (rnd() < opts.sourceFraction) chosen.add(i);
  let esi = k + Math.floor(rnd() * 100000);
  while (chosen.size < k + 40) chosen.add((esi += 1 + Math.floor(rnd() * 3)));
  const esis = shuffle([...chosen], rnd);
  let fed = 0;
  let done = false;
  for (const esi of esis) {
    const sym = enc.symbol(esi);
    assert.equal(dec.received, fed);
    done = dec.add(esi, sym);
    fed++;
    if (rnd() < opts.dupRate) {
      const before = dec.received;
      const again = dec.add(esi, sym);
      assert.equal(again, done);
      if (!done) assert.equal(dec.received, before, 'duplicate not counted');
    }
    if (done) break;
  }
  assert.ok(done, `K=${k} T=${t} not decoded from ${fed} symbols`);
  assert.deepEqual(dec.result(), data);
  return fed - k;
}

test('random erasures, duplicates, reordering, mixed source/repair', () => {
  const rnd = prng(1);
  let overhead = 0;
  let runs = 0;
  for (const k of [1, 2, 3, 10, 11, 17, 50, 100, 101, 300, 1000]) {
    for (const sourceFraction of [0, 0.3, 0.9, 1]) {
      overhead += roundTrip(k, 16, k * 16 - Math.floor(rnd() * 16), rnd, { sourceFraction, dupRate: 0.2 });
      runs++;
    }
  }
  // Overhead beyond K is 0 in ~99 % of decodes; a handful of extra symbols in total is normal.
  assert.ok(overhead <= 4, `total overhead ${overhead} over ${runs} decodes`);
});

test("K' boundaries: K equal to a table K', and one above (largest padding)", () => {
  const rnd = prng(2);
  for (let i = 0; i < 477 * 5; i += 5 * 12) {
    const kp = SYSTEMATIC[i]!;
    if (kp > 3000) break;
    for (const k of [kp, kp + 1, kp - 1]) if (k >= 1) roundTrip(k, 4, k * 4, rnd, { sourceFraction: 0.5, dupRate: 0 });
  }
  // A few large ones, repair only.
  for (const k of [8192, 12000]) roundTrip(k, 4, k * 4 - 1, rnd, { sourceFraction: 0, dupRate: 0 });
});

test('symbol sizes from 4 to 65535 bytes (multiples of Al)', () => {
  const rnd = prng(3);
  for (const [t, al] of [[4, 4], [8, 4], [12, 4], [20, 2], [5, 1], [1280, 4], [1281, 1], [65532, 4], [65535, 1], [65535, 5]] as const) {
    roundTrip(5, t, 5 * t - 3, rnd, { sourceFraction: 0.4, dupRate: 0.1, alignment: al });
  }
});

test('sub-blocks (N > 1): symbols interleave sub-symbols; object round trip over several blocks', () => {
  const rnd = prng(4);
  roundTrip(40, 1024, 40 * 1024 - 100, rnd, { sourceFraction: 0.5, dupRate: 0, subBlocks: 4, alignment: 4 });
  roundTrip(30, 1020, 30 * 1020, rnd, { sourceFraction: 0, dupRate: 0, subBlocks: 7, alignment: 4 });
  const data = randomBytes(100_003, rnd);
  const oti = { transferLength: data.length, symbolSize: 1024, sourceBlocks: 3, subBlocks: 4, alignment: 4 };
  const enc = new ObjectEncoder(data, oti);
  const dec = new ObjectDecoder(oti);
  const stream: [number, number][] = [];
  for (const b of blockPartition(oti)) for (let i = 0; i < b.k + 3; i++) stream.push([b.sbn, i < b.k / 2 ? i * 2 : b.k + i]);
  shuffle(stream, rnd);
  let done = false;
  for (const [sbn, esi] of stream) done = dec.add(sbn, esi, enc.symbol(sbn, esi));
  assert.ok(done);
  assert.deepEqual(dec.result(), data);
  // N = 1 source symbols are plain slices of the object.
  const o1 = otiFor(5000, 100);
  assert.deepEqual(new ObjectEncoder(data.subarray(0, 5000), o1).symbol(0, 3), data.subarray(300, 400));
});

test('hostile input: typed errors, never a crash or hang', () => {
  const enc = new BlockEncoder(new Uint8Array(100), 10, 16);
  assert.throws(() => enc.symbol(-1), fecCode('ERR_FEC_ESI'));
  assert.throws(() => enc.symbol(2 ** 24), fecCode('ERR_FEC_ESI'));
  assert.throws(() => enc.symbol(1.5), fecCode('ERR_FEC_ESI'));
  assert.equal(enc.symbol(2 ** 24 - 1).length, 16);
  assert.throws(() => new BlockEncoder(new Uint8Array(161), 10, 16), fecCode('ERR_FEC_BLOCK_SIZE'));
  assert.throws(() => new BlockEncoder(new Uint8Array(1), 0, 16), fecCode('ERR_FEC_BLOCK_SIZE'));
  assert.throws(() => new BlockEncoder(new Uint8Array(1), 56404, 16), fecCode('ERR_FEC_BLOCK_SIZE'));
  assert.throws(() => new BlockEncoder(new Uint8Array(1), 1, 18, 1, 4), fecCode('ERR_FEC_SYMBOL_SIZE'));
  assert.throws(() => new BlockEncoder(new Uint8Array(1), 1, 16, 5, 4), fecCode('ERR_FEC_ARGUMENT'));
  const dec = new BlockDecoder(10, 16, 150);
  assert.throws(() => dec.add(0, new Uint8Array(15)), fecCode('ERR_FEC_SYMBOL_SIZE'));
  assert.throws(() => dec.add(2 ** 24, new Uint8Array(16)), fecCode('ERR_FEC_ESI'));
  assert.throws(() => dec.add(NaN, new Uint8Array(16)), fecCode('ERR_FEC_ESI'));
  assert.throws(() => new BlockDecoder(10, 16, 161), fecCode('ERR_FEC_BLOCK_SIZE'));
  // Garbage symbols with valid ESIs decode to garbage, never throw or hang.
  const rnd = prng(5);
  for (let i = 0; i < 12; i++) dec.add(10 + i * 7, randomBytes(16, rnd));
  assert.equal(dec.result()?.length, 150);
  const oti = otiFor(1000, 16);
  const od = new ObjectDecoder(oti);
  assert.throws(() => od.add(1, 0, new Uint8Array(16)), fecCode('ERR_FEC_SBN'));
  assert.throws(() => od.add(-1, 0, new Uint8Array(16)), fecCode('ERR_FEC_SBN'));
  assert.throws(() => new ObjectEncoder(new Uint8Array(999), oti), fecCode('ERR_FEC_OTI'));
  assert.throws(() => new ObjectEncoder(new Uint8Array(1000), oti).symbol(3, 0), fecCode('ERR_FEC_SBN'));
  assert.equal(od.result(), undefined);
});

test('decoder asks for more when the first K symbols fail, and succeeds with more', () => {
  // Find a failing K-set deterministically (about 1 % of sets), then add one more symbol.
  const rnd = prng(6);
  const k = 26;
  const data = randomBytes(k * 8, rnd);
  const enc = new BlockEncoder(data, k, 8);
  for (let trial = 0; trial < 2000; trial++) {
    const dec = new BlockDecoder(k, 8, data.length);
    const base = k + trial * 1000;
    let done = false;
    for (let i = 0; i < k; i++) done = dec.add(base + i, enc.symbol(base + i));
    if (done) continue;
    assert.equal(dec.result(), undefined);
    assert.equal(dec.failures, 1);
    let extra = 0;
    while (!done) done = dec.add(base + k + extra, enc.symbol(base + k + extra++));
    assert.deepEqual(dec.result(), data);
    return;
  }
  assert.fail('no failing set found in 2000 trials');
});

test('ObjectEncoder over more blocks than it keeps live: symbols are the same when a block is rebuilt', () => {
  const rnd = prng(8);
  const data = randomBytes(40 * 64 * 7 - 11, rnd);
  const oti = otiFor(data.length, 64, { maxBlockSymbols: 40 });
  assert.equal(oti.sourceBlocks, 7);
  const enc = new ObjectEncoder(data, oti);
  const first = [0, 1, 2, 3, 4, 5, 6].map((sbn) => enc.symbol(sbn, 100 + sbn));
  const again = [6, 5, 4, 3, 2, 1, 0].map((sbn) => enc.symbol(sbn, 100 + sbn)).reverse();
  assert.deepEqual(again, first);
  const dec = new ObjectDecoder(oti);
  let done = false;
  for (let esi = 50; !done; esi++) for (let sbn = 0; sbn < 7; sbn++) done = dec.add(sbn, esi, enc.symbol(sbn, esi));
  assert.deepEqual(dec.result(), data);
});

test('a decoder reusing the previous block\'s receive buffer (dirty) still decodes exactly', () => {
  const rnd = prng(4242);
  const k = 300;
  const t = 48;
  // Different data, received-set sizes and paths (repair only, mixed, all source) one after another.
  for (const [extra, sourceEvery] of [[6, 0], [0, 3], [2, 0], [0, 1]] as const) {
    const data = randomBytes(k * t - 5, rnd);
    const enc = new BlockEncoder(data, k, t);
    const dec = new BlockDecoder(k, t, data.length);
    let esi = sourceEvery ? 0 : k + Math.floor(rnd() * 1000);
    let fed = 0;
    while (!dec.done && fed < k + extra + 20) {
      const e = sourceEvery && fed % sourceEvery === 0 ? fed : esi++ + k;
      dec.add(e, enc.symbol(e));
      fed++;
    }
    assert.deepEqual(dec.result(), data);
    enc.close();
  }
});

test('decodeFrom: symbols used in place, block written over them, same bytes as add(); duplicates refused', () => {
  const rnd = prng(91);
  for (const [k, t, sub] of [[100, 64, 1], [517, 32, 1], [60, 48, 3]] as const) {
    const len = k * t - 7;
    const data = randomBytes(len, rnd);
    const enc = new BlockEncoder(data, k, t, sub, 4);
    // Lose a fifth of the source symbols, make up with repair symbols (ESIs >= K).
    const esis: number[] = [];
    for (let e = 0; esis.length < k; e++) if (e >= k || rnd() >= 0.2) esis.push(e);
    const symbols = new Uint8Array(esis.length * t + 64).fill(0xee);
    esis.forEach((e, i) => enc.symbolInto(e, symbols, i * t));
    const viaAdd = new BlockDecoder(k, t, len, sub, 4);
    for (const [i, e] of esis.entries()) viaAdd.add(e, symbols.slice(i * t, (i + 1) * t));
    const out = symbols.subarray(0, len);
    const got = new BlockDecoder(k, t, len, sub, 4).decodeFrom(Int32Array.from(esis), symbols, esis.length, out);
    assert.ok(got, `K=${k} decodes`);
    assert.equal(got.buffer, symbols.buffer, 'written into the given buffer');
    assert.deepEqual(got, data);
    assert.deepEqual(viaAdd.result(), data);
  }
  const dec = new BlockDecoder(10, 16, 160);
  assert.throws(() => dec.decodeFrom([1, 2, 1], new Uint8Array(48), 3), FecError);
  assert.equal(new BlockDecoder(10, 16, 160).decodeFrom([0, 1, 2], new Uint8Array(48), 3), undefined, 'fewer than K symbols: not determined');
});

test('EncoderBuild: built in slices of any size on dirty pooled memory, its repair symbols are BlockEncoder\'s', () => {
  // K = 10 and 101 are table values of K' (no padding); 103 and 1000 pad (to 114 and 1002).
  for (const [k, t, slice] of [[10, 16, 1], [101, 64, 97], [103, 48, 1000], [1000, 32, 4096]] as const) {
    const block = randomBytes(k * t - 7, prng(k));
    const whole = new BlockEncoder(block, k, t, 1, 4);
    // Dirty the pool: the next arena of this size is reused memory full of another block's symbols.
    new BlockEncoder(randomBytes(k * t, prng(k + 1)), k, t, 1, 4).close();
    const b = new EncoderBuild(k, t);
    b.sourceView.set(block);
    b.sourceView.fill(0, block.length);
    let steps = 0;
    while (!b.step(slice)) steps++;
    assert.equal(steps, Math.ceil(b.operations / slice) - 1, `K=${k}: ${b.operations} operations in slices of ${slice}`);
    const enc = b.finish();
    for (const esi of [k, k + 1, k + 7, 5000, 2 ** 24 - 1]) {
      const got = new Uint8Array(t + 3);
      enc.symbolInto(esi, got, 3);
      assert.deepEqual(got.subarray(3), whole.symbol(esi), `K=${k} ESI ${esi}`);
    }
    assert.throws(() => enc.symbolInto(k - 1, new Uint8Array(t)), /ESI/, 'a source ESI is refused: the source symbols are the block');
    assert.throws(() => enc.symbolInto(k, new Uint8Array(t - 1)), /too small/);
  }
});

test('in-place decoding: the missing source symbols, from symbols written into the decoder\'s own memory', () => {
  const rnd = prng(77);
  for (const [k, t] of [[10, 16], [103, 48], [1000, 32]] as const) {
    const block = randomBytes(k * t - 5, rnd);
    const enc = new BlockEncoder(block, k, t, 1, 4);
    // Lose about a fifth of the source symbols; make up with repair symbols (plus one spare).
    const esis: number[] = [];
    for (let i = 0; i < k; i++) if (rnd() >= 0.2) esis.push(i);
    const missing = k - esis.length;
    for (let r = 0; r <= missing; r++) esis.push(k + 3 * r);
    shuffle(esis, rnd);
    const dec = new BlockDecoder(k, t, block.length, 1, 4);
    const into = dec.prepareInPlace(esis);
    assert.ok(into, `K=${k}: K+1 symbols determine the block`);
    assert.equal(into.length, esis.length * t);
    esis.forEach((esi, i) => into.set(enc.symbol(esi), i * t));
    const rows = dec.decodeMissing();
    const have = new Set(esis);
    const padded = new Uint8Array(k * t);
    padded.set(block);
    for (let i = 0; i < k; i++) {
      if (have.has(i)) continue;
      assert.deepEqual(rows.subarray(i * t, (i + 1) * t), padded.subarray(i * t, (i + 1) * t), `K=${k}: source symbol ${i}`);
    }
    dec.release();
  }
});

test('in-place decoding refuses what cannot work: too few or dependent ESIs (undefined), N > 1, duplicates, reuse', () => {
  const k = 100;
  const few = new BlockDecoder(k, 16, k * 16, 1, 4);
  assert.equal(few.prepareInPlace(Array.from({ length: k - 1 }, (_, i) => i)), undefined);
  assert.equal(few.failures, 1);
  assert.throws(() => new BlockDecoder(k, 16, k * 16, 2, 4).prepareInPlace([0]), fecCode('ERR_FEC_ARGUMENT'));
  assert.throws(() => new BlockDecoder(k, 16, k * 16, 1, 4).prepareInPlace([1, 1]), fecCode('ERR_FEC_ARGUMENT'));
  assert.throws(() => new BlockDecoder(k, 16, k * 16, 1, 4).prepareInPlace([2 ** 24]), fecCode('ERR_FEC_ESI'));
  assert.throws(() => new BlockDecoder(k, 16, k * 16, 1, 4).decodeMissing(), fecCode('ERR_FEC_ARGUMENT'));
  const once = new BlockDecoder(k, 16, k * 16, 1, 4);
  assert.ok(once.prepareInPlace(Array.from({ length: k }, (_, i) => i)));
  assert.throws(() => once.prepareInPlace([0]), fecCode('ERR_FEC_ARGUMENT'));
  once.release();
});
