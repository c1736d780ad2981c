// The WebAssembly SIMD128 kernel: its bytes are what scripts/build-wasm.mjs makes of kernel.wat,
// and it computes exactly what the pure TypeScript kernel computes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { FecError } from '../../src/errors.js';
import { BlockDecoder, BlockEncoder, blockParams, kernel, setKernel } from '../../src/fec/index.js';
import { slotLayout } from '../../src/fec/solver.js';
import { createArena } from '../../src/fec/arena.js';
import { PlanBuilder, type Plan } from '../../src/fec/plan.js';
import { wasmAvailable } from '../../src/fec/wasm-kernel.js';
import { REPO_ROOT, prng, randomBytes } from './helpers.js';

test('kernel.generated.ts is the compiled kernel.wat', () => {
  const out = execFileSync(process.execPath, [REPO_ROOT + 'scripts/build-wasm.mjs', '--check'], { encoding: 'utf8' });
  assert.match(out, /matches/);
});

test('WebAssembly SIMD128 is available in this Node', () => {
  assert.ok(wasmAvailable());
});

/** Run one plan from the same start on a TypeScript and a wasm arena; they must agree. */
function runOnBothKernels(slots: number, stride: number, plan: Plan, init: Uint8Array) {
  const a = createArena(slots, stride, 'ts');
  const b = createArena(slots, stride, 'wasm');
  a.bytes.set(init);
  b.bytes.set(init);
  a.run(plan);
  b.run(plan);
  assert.deepEqual(b.bytes, a.bytes, `stride ${stride}`);
  return { a, b };
}

test('wasm and TypeScript kernels agree on random plans (all ops, odd lengths)', () => {
  const rnd = prng(9);
  for (const stride of [1, 3, 4, 15, 16, 17, 33, 1280, 1283]) {
    const slots = 12;
    const pb = new PlanBuilder();
    for (let i = 0; i < 400; i++) {
      const op = Math.floor(rnd() * 5);
      const dst = Math.floor(rnd() * slots);
      let src = Math.floor(rnd() * slots);
      if (src === dst) src = (src + 1) % slots;
      pb.push(op, dst, src, Math.floor(rnd() * 256));
    }
    const { a, b } = runOnBothKernels(slots, stride, pb.finish(), randomBytes(slots * stride, rnd));
    a.xor(0, stride * 5);
    b.xor(0, stride * 5);
    assert.deepEqual(b.bytes, a.bytes);
  }
});

test('wasm fuses XOR chains exactly like sequential ops (long chains, self-XOR, mixed ops)', () => {
  const rnd = prng(13);
  for (const stride of [7, 16, 32, 100, 1280]) {
    const slots = 90;
    const pb = new PlanBuilder();
    for (let c = 0; c < 60; c++) {
      const dst = Math.floor(rnd() * slots);
      const len = [1, 2, 3, 8, 63, 64, 65, 70][c % 8]!;
      pb.push(rnd() < 0.5 ? 0 : 1, dst, (dst + 1) % slots, 0);
      for (let i = 0; i < len; i++) {
        const self = rnd() < 0.03;
        pb.push(1, dst, self ? dst : (dst + 2 + Math.floor(rnd() * (slots - 2))) % slots, 0);
      }
      if (rnd() < 0.3) pb.push(2, dst, (dst + 5) % slots, 1 + Math.floor(rnd() * 255));
    }
    const { a, b } = runOnBothKernels(slots, stride, pb.finish(), randomBytes(slots * stride, rnd));
    const srcs = Int32Array.from({ length: 70 }, (_, i) => ((i * 7 + 3) % (slots - 1) + 1) * stride);
    for (const n of [1, 2, 64, 70]) {
      a.xorSum(0, srcs, n);
      b.xorSum(0, srcs, n);
      assert.deepEqual(b.bytes, a.bytes, `xorSum n=${n}`);
    }
    b.release();
  }
});

test('encoder and decoder give identical bytes with either kernel', () => {
  const rnd = prng(10);
  const saved = kernel();
  try {
    for (const [k, t] of [[100, 1280], [333, 13]] as const) {
      const data = randomBytes(k * t - 5, rnd);
      setKernel('ts');
      const e1 = new BlockEncoder(data, k, t, 1, 1);
      setKernel('wasm');
      const e2 = new BlockEncoder(data, k, t, 1, 1);
      const dec = new BlockDecoder(k, t, data.length, 1, 1);
      let done = false;
      for (let esi = k; !done; esi++) {
        const s = e2.symbol(esi);
        assert.deepEqual(s, e1.symbol(esi));
        done = dec.add(esi, s);
      }
      assert.deepEqual(dec.result(), data);
    }
  } finally {
    setKernel(saved);
  }
});

test('pooled wasm memory is reused dirty and still gives exact symbols (close() after each block)', () => {
  const rnd = prng(12);
  const saved = kernel();
  try {
    for (const k of [10, 100, 101]) {
      const t = 64;
      const bp = blockParams(k);
      const data = randomBytes(k * t - 9, rnd);
      setKernel('ts');
      const ref = new BlockEncoder(data, k, t);
      setKernel('wasm');
      for (let round = 0; round < 3; round++) {
        // Poison whatever the pool will hand out next for this size.
        for (const slots of [slotLayout(bp, bp.kPrime).slots, slotLayout(bp, bp.kPrime - k + k + round).slots + k]) {
          const a = createArena(slots, t, 'wasm');
          a.bytes.fill(0xa5);
          a.release();
        }
        const enc = new BlockEncoder(data, k, t);
        for (const esi of [0, k - 1, k, k + 7, 99999]) assert.deepEqual(enc.symbol(esi), ref.symbol(esi), `K=${k} ESI ${esi}`);
        const dec = new BlockDecoder(k, t, data.length);
        let done = false;
        for (let esi = k + round * 1000; !done; esi++) done = dec.add(esi, enc.symbol(esi));
        assert.deepEqual(dec.result(), data);
        enc.close();
        assert.throws(() => enc.symbol(k), (e: unknown) => e instanceof FecError && e.code === 'ERR_FEC_CLOSED');
        assert.deepEqual(enc.symbol(0), ref.symbol(0), 'source symbols still available after close()');
      }
    }
  } finally {
    setKernel(saved);
  }
});
