// Symbol operations (RFC 6330 5.7.2-style: XOR, multiply, multiply-add of whole symbols) over a
// byte arena, in pure TypeScript. wasm-kernel.ts does the same with WebAssembly SIMD128; the
// tests check both give identical bytes.
import { MUL } from './gf256.js';
import { OP_COPY, OP_MUL, OP_MULADD, OP_XOR, OP_ZERO } from './plan.js';
import type { Plan } from './plan.js';

export function xorInto(a: Uint8Array, dst: number, src: number, len: number): void {
  if (((a.byteOffset + dst) | (a.byteOffset + src) | len) % 4 === 0) {
    const w = new Int32Array(a.buffer, a.byteOffset + dst, len >> 2);
    const s = new Int32Array(a.buffer, a.byteOffset + src, len >> 2);
    for (let i = 0; i < w.length; i++) w[i]! ^= s[i]!;
    return;
  }
  for (let i = 0; i < len; i++) a[dst + i]! ^= a[src + i]!;
}

export function mulAddInto(a: Uint8Array, dst: number, src: number, coeff: number, len: number): void {
  if (coeff === 0) return;
  if (coeff === 1) return xorInto(a, dst, src, len);
  const base = coeff << 8;
  for (let i = 0; i < len; i++) a[dst + i]! ^= MUL[base | a[src + i]!]!;
}

export function mulInPlace(a: Uint8Array, dst: number, coeff: number, len: number): void {
  if (coeff === 1) return;
  if (coeff === 0) {
    a.fill(0, dst, dst + len);
    return;
  }
  const base = coeff << 8;
  for (let i = 0; i < len; i++) a[dst + i] = MUL[base | a[dst + i]!]!;
}

/**
 * Replays a plan on arena slots: slot s occupies bytes [s*stride, s*stride + stride). words is an
 * Int32Array over the same bytes, used for XOR when the stride is a multiple of 4.
 */
export function runPlanTs(a: Uint8Array, words: Int32Array | undefined, plan: Plan, stride: number, from = 0, to = plan.length): void {
  const ops = plan.ops;
  const len = stride;
  const wl = stride >> 2;
  for (let i = from * 4; i < to * 4; i += 4) {
    const op = ops[i]!;
    const dst = ops[i + 1]! * stride;
    const src = ops[i + 2]! * stride;
    const c = ops[i + 3]!;
    if (op === OP_XOR || (op === OP_MULADD && c === 1)) {
      if (words !== undefined) {
        const d = dst >> 2;
        const s = src >> 2;
        for (let k = 0; k < wl; k++) words[d + k]! ^= words[s + k]!;
      } else xorInto(a, dst, src, len);
    } else if (op === OP_COPY) a.copyWithin(dst, src, src + len);
    else if (op === OP_MULADD) mulAddInto(a, dst, src, c, len);
    else if (op === OP_MUL) mulInPlace(a, dst, c, len);
    else if (op === OP_ZERO) a.fill(0, dst, dst + len);
    else throw new Error(`bad plan op ${op}`);
  }
}
