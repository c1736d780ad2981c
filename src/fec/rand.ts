// Rand, Deg and Tuple of RFC 6330 sections 5.3.5.1 - 5.3.5.4, and the systematic index lookup (5.6).
import { DEG_F, SYSTEMATIC, V0, V1, V2, V3 } from './rfc6330-data.js';
import { fecError } from './errors.js';

/** Parameters derived from K' (RFC 6330 5.3.3.3 and Table 2). */
export interface BlockParams {
  readonly kPrime: number;
  readonly j: number;
  readonly s: number;
  readonly h: number;
  readonly w: number;
  /** L = K' + S + H intermediate symbols. */
  readonly l: number;
  /** P = L - W permanently inactivated symbols. */
  readonly p: number;
  /** P1 = smallest prime >= P. */
  readonly p1: number;
  /** B = W - S LT symbols that feed the LDPC rows. */
  readonly b: number;
}

export const MAX_K = 56403;
const ROWS = SYSTEMATIC.length / 5;

function isPrime(n: number): boolean {
  if (n < 2) return false;
  for (let d = 2; d * d <= n; d++) if (n % d === 0) return false;
  return true;
}

const paramsCache = new Map<number, BlockParams>();

/** Index of the smallest K' >= k in Table 2 (section 5.6). */
export function kPrimeIndex(k: number): number {
  if (!Number.isInteger(k) || k < 1 || k > MAX_K) throw fecError('blockSize', `K=${k} outside 1..${MAX_K}`);
  let lo = 0;
  let hi = ROWS - 1;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (SYSTEMATIC[mid * 5]! >= k) hi = mid;
    else lo = mid + 1;
  }
  return lo;
}

/** Block parameters for K source symbols (K' is the smallest table entry >= K). */
export function blockParams(k: number): BlockParams {
  const idx = kPrimeIndex(k);
  const kPrime = SYSTEMATIC[idx * 5]!;
  let bp = paramsCache.get(kPrime);
  if (bp === undefined) {
    const j = SYSTEMATIC[idx * 5 + 1]!;
    const s = SYSTEMATIC[idx * 5 + 2]!;
    const h = SYSTEMATIC[idx * 5 + 3]!;
    const w = SYSTEMATIC[idx * 5 + 4]!;
    const l = kPrime + s + h;
    const p = l - w;
    let p1 = p;
    while (!isPrime(p1)) p1++;
    bp = Object.freeze({ kPrime, j, s, h, w, l, p, p1, b: w - s });
    paramsCache.set(kPrime, bp);
  }
  return bp;
}

/** Rand[y, i, m] of 5.3.5.1; y is an unsigned 32-bit integer. */
export function rand(y: number, i: number, m: number): number {
  const x =
    (V0[(y + i) & 0xff]! ^ V1[((y >>> 8) + i) & 0xff]! ^ V2[((y >>> 16) + i) & 0xff]! ^ V3[((y >>> 24) + i) & 0xff]!) >>> 0;
  return x % m;
}

/** Deg[v] of 5.3.5.2: d with f[d-1] <= v < f[d], then min(d, W-2). */
export function deg(v: number, w: number): number {
  let d = 1;
  while (v >= DEG_F[d]!) d++;
  return Math.min(d, w - 2);
}

/** Tuple[K', X] of 5.3.5.4, written into out[0..5] = d, a, b, d1, a1, b1. */
export function tuple(bp: BlockParams, x: number, out: Int32Array): void {
  let a = (53591 + bp.j * 997) >>> 0;
  if (a % 2 === 0) a++;
  const b = (10267 * (bp.j + 1)) >>> 0;
  const y = (Math.imul(x, a) + b) >>> 0;
  const v = rand(y, 0, 1 << 20);
  const d = deg(v, bp.w);
  out[0] = d;
  out[1] = 1 + rand(y, 1, bp.w - 1);
  out[2] = rand(y, 2, bp.w);
  out[3] = d < 4 ? 2 + rand(x, 3, 2) : 2;
  out[4] = 1 + rand(x, 4, bp.p1 - 1);
  out[5] = rand(x, 5, bp.p1);
}

/**
 * Intermediate-symbol indices combined by Enc[K', C, Tuple[K', X]] (5.3.5.3), written to cols;
 * returns the count. The LT part walks mod W (prime), the PI part mod P1 skipping values >= P, so
 * all indices are distinct.
 */
export function ltIndices(bp: BlockParams, x: number, tup: Int32Array, cols: Int32Array): number {
  tuple(bp, x, tup);
  const d = tup[0]!;
  const a = tup[1]!;
  let b = tup[2]!;
  const d1 = tup[3]!;
  const a1 = tup[4]!;
  let b1 = tup[5]!;
  const { w, p, p1 } = bp;
  let n = 0;
  cols[n++] = b;
  for (let j = 1; j < d; j++) {
    b = (b + a) % w;
    cols[n++] = b;
  }
  while (b1 >= p) b1 = (b1 + a1) % p1;
  cols[n++] = w + b1;
  for (let j = 1; j < d1; j++) {
    b1 = (b1 + a1) % p1;
    while (b1 >= p) b1 = (b1 + a1) % p1;
    cols[n++] = w + b1;
  }
  return n;
}
