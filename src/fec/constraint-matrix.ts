// Sparse binary part of the constraint matrix A of RFC 6330 5.3.3.3 / 5.3.3.4: the S LDPC rows
// followed by one LT row per received (or source) symbol. The H HDPC rows are dense over GF(256)
// and are never materialised: solver.ts applies them through MT x GAMMA (see hdpcMt).
import type { BlockParams } from './rand.js';
import { ltIndices, rand } from './rand.js';

export interface SparseRows {
  /** Number of binary rows (S LDPC rows then the LT rows). */
  readonly n: number;
  readonly start: Int32Array;
  readonly cols: Int32Array;
}

/** Builds the S LDPC rows (5.3.3.3) and the LT rows for the given ISIs (5.3.5.3) in CSR form. */
export function buildRows(bp: BlockParams, isis: ArrayLike<number>): SparseRows {
  const { s, b, w, p } = bp;
  const ldpc: Set<number>[] = [];
  for (let i = 0; i < s; i++) ldpc.push(new Set<number>());
  // GF(2): a column hitting the same row twice cancels, hence toggling.
  const toggle = (row: number, col: number): void => {
    const set = ldpc[row]!;
    if (set.has(col)) set.delete(col);
    else set.add(col);
  };
  for (let i = 0; i < b; i++) {
    const a = 1 + Math.floor(i / s);
    let r = i % s;
    toggle(r, i);
    r = (r + a) % s;
    toggle(r, i);
    r = (r + a) % s;
    toggle(r, i);
  }
  for (let i = 0; i < s; i++) {
    toggle(i, b + i);
    toggle(i, w + (i % p));
    toggle(i, w + ((i + 1) % p));
  }
  let nnz = 0;
  for (const set of ldpc) nnz += set.size;
  const n = s + isis.length;
  const start = new Int32Array(n + 1);
  let cols = new Int32Array(nnz + isis.length * 8);
  let at = 0;
  for (let i = 0; i < s; i++) {
    start[i] = at;
    for (const c of [...ldpc[i]!].sort((x, y) => x - y)) cols[at++] = c;
  }
  const tup = new Int32Array(6);
  const tmp = new Int32Array(64);
  for (let i = 0; i < isis.length; i++) {
    start[s + i] = at;
    const m = ltIndices(bp, isis[i]!, tup, tmp);
    if (at + m > cols.length) {
      const next = new Int32Array(cols.length * 2 + m);
      next.set(cols);
      cols = next;
    }
    for (let j = 0; j < m; j++) cols[at++] = tmp[j]!;
  }
  start[n] = at;
  return { n, start, cols: cols.subarray(0, at) };
}

/**
 * The two HDPC rows that column j (0 <= j < K'+S-1) of MT has a 1 in (5.3.3.3); the last column
 * K'+S-1 of MT is alpha^i in row i instead.
 */
export function hdpcMt(bp: BlockParams, j: number): [number, number] {
  const h1 = rand(j + 1, 6, bp.h);
  const h2 = (h1 + rand(j + 1, 7, bp.h - 1) + 1) % bp.h;
  return [h1, h2];
}
