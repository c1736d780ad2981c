// Decode failure rates against RFC 6330's targets (section 1 / 5.4): about 1 % of random sets of
// exactly K encoding symbols do not determine the block; with K + 2 practically none fail.
// The decodability of a set of ESIs depends only on the matrix, so the trials run the solver
// alone (no symbol data); seeded, so the counts are reproducible.
//
// Bounds (documented in docs/raptorq.md): 5000 trials at K, pooled over K = 26, 100 (K' = 101,
// one padding symbol) and 101 (K = K'); observed 0.5 - 1 %. The test accepts 0.2 % .. 1.5 %
// (at a true rate of 1 % the upper bound is 3.6 sigma away). At K + 2: 5000 trials, 0 failures.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { blockParams } from '../../src/fec/rand.js';
import { solve } from '../../src/fec/solver.js';
import { prng } from './helpers.js';

function failures(k: number, extra: number, trials: number, seed: number): number {
  const rnd = prng(seed);
  const bp = blockParams(k);
  const pad = bp.kPrime - k;
  let fails = 0;
  for (let t = 0; t < trials; t++) {
    const esis = new Set<number>();
    // Any ESIs: mostly repair, sometimes source.
    while (esis.size < k + extra) esis.add(rnd() < 0.2 ? Math.floor(rnd() * k) : k + Math.floor(rnd() * (1 << 20)));
    const isis = new Int32Array(pad + esis.size);
    for (let i = 0; i < pad; i++) isis[i] = k + i;
    let j = pad;
    for (const e of esis) isis[j++] = e < k ? e : e + pad;
    if (solve(bp, isis, (i) => i < pad) === undefined) fails++;
  }
  return fails;
}

const PLAN: [number, number][] = [
  [26, 2500],
  [100, 1250],
  [101, 1250],
];

test('about 1 % of sets of exactly K symbols fail', () => {
  let fails = 0;
  let trials = 0;
  for (const [k, n] of PLAN) {
    fails += failures(k, 0, n, k);
    trials += n;
  }
  const rate = fails / trials;
  assert.ok(rate >= 0.002 && rate <= 0.015, `failure rate at K: ${fails}/${trials}`);
});

test('sets of K + 2 symbols practically never fail', () => {
  let fails = 0;
  for (const [k, n] of PLAN) fails += failures(k, 2, n, k + 1000);
  assert.equal(fails, 0);
});
