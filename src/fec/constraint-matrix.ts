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
  // LDPC rows (5.3.3.3). Each column i < B hits rows r0, r0+a, r0+2a (mod S); GF(2), so a column
  // hitting one row twice would cancel (only possible if S divides a or 2a, which the table never
  // produces, but handled anyway). Columns are appended in increasing order per row.
  const perRow: number[][] = [];
  for (let i = 0; i < s; i++) perRow.push([]);
  const add = (row: number, col: number): void => {
    const list = perRow[row]!;
    if (list.length > 0 && list[list.length - 1] === col) list.pop();
    else list.push(col);
  };
  for (let i = 0; i < b; i++) {
    const a = 1 + Math.floor(i / s);
    const r0 = i % s;
    const r1 = (r0 + a) % s;
    const r2 = (r1 + a) % s;
    add(r0, i);
    add(r1, i);
    add(r2, i);
  }
  for (let i = 0; i < s; i++) {
    add(i, b + i);
    const c1 = w + (i % p);
    const c2 = w + ((i + 1) % p);
    const lo = Math.min(c1, c2);
    const hi = Math.max(c1, c2);
    add(i, lo);
    add(i, hi);
  }
  let nnz = 0;
  for (const list of perRow) nnz += list.length;
  const n = s + isis.length;
  const start = new Int32Array(n + 1);
  let cols = new Int32Array(nnz + isis.length * 8);
  let at = 0;
  for (let i = 0; i < s; i++) {
    start[i] = at;
    for (const c of perRow[i]!) cols[at++] = c;
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

/** hdpcMt for every column j < K'+S-1, as pairs (h1, h2) in one array; cached per K'. */
const mtCache = new Map<number, Uint16Array>();
export function hdpcMtRows(bp: BlockParams): Uint16Array {
  let rows = mtCache.get(bp.kPrime);
  if (rows === undefined) {
    const cols = bp.kPrime + bp.s - 1;
    rows = new Uint16Array(2 * cols);
    for (let j = 0; j < cols; j++) {
      const [h1, h2] = hdpcMt(bp, j);
      rows[2 * j] = h1;
      rows[2 * j + 1] = h2;
    }
    if (mtCache.size >= 8) mtCache.delete(mtCache.keys().next().value!);
    mtCache.set(bp.kPrime, rows);
  }
  return rows;
}
