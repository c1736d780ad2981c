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

/** Replays a plan on arena slots: slot s occupies bytes [base + s*stride, base + s*stride + len). */
export function runPlanTs(a: Uint8Array, plan: Plan, base: number, stride: number, len: number): void {
  const ops = plan.ops;
  for (let i = 0; i < plan.length * 4; i += 4) {
    const op = ops[i]!;
    const dst = base + ops[i + 1]! * stride;
    switch (op) {
      case OP_XOR:
        xorInto(a, dst, base + ops[i + 2]! * stride, len);
        break;
      case OP_COPY: {
        const src = base + ops[i + 2]! * stride;
        a.copyWithin(dst, src, src + len);
        break;
      }
      case OP_MULADD:
        mulAddInto(a, dst, base + ops[i + 2]! * stride, ops[i + 3]!, len);
        break;
      case OP_MUL:
        mulInPlace(a, dst, ops[i + 3]!, len);
        break;
      case OP_ZERO:
        a.fill(0, dst, dst + len);
        break;
      default:
        throw new Error(`bad plan op ${op}`);
    }
  }
}
