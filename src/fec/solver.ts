// Inactivation decoding (RFC 6330 5.4.2) that records symbol operations instead of doing them.
//
// The matrix work only looks at the row/column structure, so its result is a Plan: a fixed list
// of slot operations that turns the D symbols into the L intermediate symbols C. The encoder's
// plan depends on K' only and is cached (encoder.ts); the decoder records one per attempt.
//
// Structure (equivalent to phases 1-5 of 5.4.2, arranged to keep symbol work sparse):
//  1. Peeling on the binary rows (LDPC + LT) with inactivation; HDPC rows are not chosen (5.4.2.2).
//     The P PI columns start inactive. Row choice as in 5.4.2.2: smallest r (nonzeros in V);
//     for r = 2 a row in a largest component of the r = 2 graph, else smallest original degree.
//     A chosen row has exactly one column left in V, so the pivots form a triangular system over
//     the original sparse rows.
//  2. Forward pass with the inactive symbols taken as zero: C0[c] for every pivot, then the
//     reduced right-hand sides of the unchosen binary rows and of the HDPC rows. The HDPC rows
//     are reduced through MT x GAMMA with Horner's rule (Y_j = alpha*Y_{j-1} + X_j), which costs
//     one multiply per column instead of H multiply-adds.
//  3. The u x u system of the inactive columns: GF(2) elimination on bit-packed binary rows, then
//     the HDPC rows (GF(256)) for the columns no binary row can pin down.
//  4. Back substitution on the original sparse pivot rows with the true inactive values.
import type { BlockParams } from './rand.js';
import { alphaPow, gfInv, MUL } from './gf256.js';
import { buildRows, hdpcMtRows } from './constraint-matrix.js';
import { OP_COPY, OP_MUL, OP_MULADD, OP_XOR, OP_ZERO, PlanBuilder } from './plan.js';
import type { Plan } from './plan.js';

/**
 * Slot layout: binary row r (S LDPC rows, then one LT row per ISI) has slot r; C[j] is slot
 * cBase + j; the H HDPC right-hand sides and one scratch symbol follow.
 */
export interface SlotLayout {
  readonly rows: number;
  readonly cBase: number;
  readonly hBase: number;
  readonly scratch: number;
  readonly slots: number;
}

export function slotLayout(bp: BlockParams, ltRows: number): SlotLayout {
  const rows = bp.s + ltRows;
  const cBase = rows;
  const hBase = cBase + bp.l;
  return { rows, cBase, hBase, scratch: hBase + bp.h, slots: hBase + bp.h + 1 };
}

export interface SolveResult {
  readonly plan: Plan;
  readonly layout: SlotLayout;
  /** Inactivated columns (including the P permanently inactive ones). */
  readonly inactive: number;
}

/**
 * Records the plan that computes the intermediate symbols from the LT rows with the given ISIs.
 * zeroLt marks LT rows whose symbol is known to be zero (padding ISIs K..K'-1 in the decoder);
 * their slots are zeroed by the plan. Returns undefined if the rows do not determine C.
 * `compact` false returns the plan as a view of the builder's buffer (for a plan run once).
 */
export function solve(bp: BlockParams, isis: ArrayLike<number>, zeroLt?: (i: number) => boolean, compact = true): SolveResult | undefined {
  const { s, h, l, w, kPrime } = bp;
  const A = buildRows(bp, isis);
  const n = A.n;
  const rs = A.start;
  const rc = A.cols;
  const layout = slotLayout(bp, isis.length);
  const { cBase, hBase, scratch } = layout;
  const isZero = new Uint8Array(n);
  for (let i = 0; i < s; i++) isZero[i] = 1;
  if (zeroLt) for (let i = 0; i < isis.length; i++) if (zeroLt(i)) isZero[s + i] = 1;

  // Column adjacency.
  const colCount = new Int32Array(l + 1);
  for (let i = 0; i < rc.length; i++) colCount[rc[i]! + 1]!++;
  for (let j = 0; j < l; j++) colCount[j + 1]! += colCount[j]!;
  const cs = colCount;
  const cr = new Int32Array(rc.length);
  {
    const fill = cs.slice(0, l);
    for (let r = 0; r < n; r++) for (let i = rs[r]!; i < rs[r + 1]!; i++) cr[fill[rc[i]!]!++] = r;
  }

  // ---- Phase 1 (5.4.2.2) ----
  const colState = new Uint8Array(l); // 0 = in V, 1 = pivot, 2 = inactive
  const colU = new Int32Array(l).fill(-1);
  const inactCols: number[] = [];
  const chosen = new Uint8Array(n);
  const vdeg = new Int32Array(n);
  let maxDeg = 0;
  for (let r = 0; r < n; r++) {
    vdeg[r] = rs[r + 1]! - rs[r]!;
    if (vdeg[r]! > maxDeg) maxDeg = vdeg[r]!;
  }
  let wd = ((bp.p + 64) >>> 5) + 1;
  let bits = new Uint32Array(n * wd);
  let u = 0;
  const buckets: number[][] = [];
  for (let d = 0; d <= maxDeg; d++) buckets.push([]);
  let minD = 1;
  const comps = new Components(l, n);
  const push = (r: number): void => {
    const d = vdeg[r]!;
    if (d > 0) {
      if (d === 2) comps.add(r);
      else buckets[d]!.push(r);
      if (d < minD) minD = d;
    }
  };
  const inactivate = (x: number): void => {
    colState[x] = 2;
    colU[x] = u;
    inactCols.push(x);
    if (u >= wd * 32) {
      const nwd = wd * 2;
      const nb = new Uint32Array(n * nwd);
      for (let r = 0; r < n; r++) nb.set(bits.subarray(r * wd, r * wd + wd), r * nwd);
      bits = nb;
      wd = nwd;
    }
    const word = u >>> 5;
    const mask = 1 << (u & 31);
    for (let i = cs[x]!; i < cs[x + 1]!; i++) {
      const r = cr[i]!;
      if (chosen[r]) continue;
      bits[r * wd + word]! ^= mask;
      vdeg[r]!--;
      push(r);
    }
    u++;
  };
  for (let x = w; x < l; x++) inactivate(x);
  for (let r = 0; r < n; r++) push(r);

  const order: number[] = []; // pivot rows, in order
  const pivotCol: number[] = [];
  const pivotRowOfCol = new Int32Array(l).fill(-1);
  for (;;) {
    let p = -1;
    while (minD <= maxDeg) {
      const bucket = buckets[minD]!;
      if (minD === 1) {
        const r = bucket.pop();
        if (r === undefined) {
          minD++;
          continue;
        }
        if (!chosen[r] && vdeg[r] === 1) {
          p = r;
          break;
        }
        continue;
      }
      p = minD === 2 ? pickTwo(comps, colState, rs, rc) : pickMinDegree(bucket, minD, chosen, vdeg, rs);
      if (p >= 0) break;
      minD++;
    }
    if (p < 0) break;
    // Keep one column of V as the pivot, inactivate the other r-1 (5.4.2.2).
    let c = -1;
    for (let i = rs[p]!; i < rs[p + 1]!; i++) {
      const x = rc[i]!;
      if (colState[x] !== 0) continue;
      if (c < 0) c = x;
      else inactivate(x);
    }
    colState[c] = 1;
    chosen[p] = 1;
    order.push(p);
    pivotCol.push(c);
    pivotRowOfCol[c] = p;
    const uw = (u + 31) >>> 5;
    const po = p * wd;
    for (let i = cs[c]!; i < cs[c + 1]!; i++) {
      const r = cr[i]!;
      if (r === p || chosen[r]) continue;
      const ro = r * wd;
      for (let k = 0; k < uw; k++) bits[ro + k]! ^= bits[po + k]!;
      vdeg[r]!--;
      push(r);
    }
  }
  // Columns no binary row reaches: only the HDPC rows can determine them.
  for (let x = 0; x < l; x++) if (colState[x] === 0) inactivate(x);

  // A run-once plan (compact false: a decoder's) borrows the previous one's buffer (recyclePlan).
  const pb = new PlanBuilder(rc.length * 2 + 4 * u * u + 4 * l, !compact);
  for (let r = 0; r < n; r++) if (isZero[r]) pb.push(OP_ZERO, r, 0, 0);

  // ---- Forward pass with inactive symbols = 0 ----
  for (let t = 0; t < order.length; t++) {
    const p = order[t]!;
    const c = pivotCol[t]!;
    const dst = cBase + c;
    let first = true;
    if (!isZero[p]) {
      pb.push(OP_COPY, dst, p, 0);
      first = false;
    }
    for (let i = rs[p]!; i < rs[p + 1]!; i++) {
      const x = rc[i]!;
      if (x === c || colState[x] !== 1) continue;
      pb.push(first ? OP_COPY : OP_XOR, dst, cBase + x, 0);
      first = false;
    }
    if (first) pb.push(OP_ZERO, dst, 0, 0);
  }
  const remaining: number[] = [];
  for (let r = 0; r < n; r++) {
    if (chosen[r]) continue;
    remaining.push(r);
    for (let i = rs[r]!; i < rs[r + 1]!; i++) {
      const x = rc[i]!;
      if (colState[x] === 1) pb.push(OP_XOR, r, cBase + x, 0);
    }
  }

  // HDPC rows through MT x GAMMA: symbols (X_j = C0[j] for pivots) and their rows over the
  // inactive columns (X_j = reduced pivot row, or e_u for an inactive column).
  // The GF(256) vectors over the u inactive columns are bit-sliced: 8 planes of uw words, plane i
  // holding bit i of every entry, so multiplying by alpha is a rotation plus three plane XORs.
  const uw = (u + 31) >>> 5;
  const yp = new Uint32Array(8 * uw);
  let yOff = 0; // logical plane i is physical plane (i + yOff) & 7
  const hp = new Uint32Array(h * 8 * uw);
  const hWritten = new Uint8Array(h);
  let yZero = true;
  let yvZero = true;
  const ks = kPrime + s;
  const addY = (hh: number): void => {
    const o = hh * 8 * uw;
    for (let i = 0; i < 8; i++) {
      const src = ((i + yOff) & 7) * uw;
      const dst = o + i * uw;
      for (let q = 0; q < uw; q++) hp[dst + q]! ^= yp[src + q]!;
    }
  };
  // x^8 = x^4 + x^3 + x^2 + 1 (0x11d): the old plane 7 becomes plane 0 and is added to 2, 3, 4.
  const mulYAlpha = (): void => {
    yOff = (yOff + 7) & 7;
    const p0 = yOff * uw;
    const p2 = ((2 + yOff) & 7) * uw;
    const p3 = ((3 + yOff) & 7) * uw;
    const p4 = ((4 + yOff) & 7) * uw;
    for (let q = 0; q < uw; q++) {
      const v = yp[p0 + q]!;
      yp[p2 + q]! ^= v;
      yp[p3 + q]! ^= v;
      yp[p4 + q]! ^= v;
    }
  };
  const hdpcRows = hdpcMtRows(bp);
  for (let j = 0; j < ks; j++) {
    if (!yZero) pb.push(OP_MUL, scratch, 0, 2);
    if (!yvZero) mulYAlpha();
    const p0 = yOff * uw;
    if (colState[j] === 1) {
      pb.push(yZero ? OP_COPY : OP_XOR, scratch, cBase + j, 0);
      yZero = false;
      const po = pivotRowOfCol[j]! * wd;
      for (let q = 0; q < uw; q++) yp[p0 + q]! ^= bits[po + q]!;
      yvZero = false;
    } else {
      const k = colU[j]!;
      yp[p0 + (k >>> 5)]! ^= 1 << (k & 31);
      yvZero = false;
    }
    if (j < ks - 1) {
      const h1 = hdpcRows[2 * j]!;
      const h2 = hdpcRows[2 * j + 1]!;
      if (!yZero) {
        pb.push(hWritten[h1] ? OP_XOR : OP_COPY, hBase + h1, scratch, 0);
        pb.push(hWritten[h2] ? OP_XOR : OP_COPY, hBase + h2, scratch, 0);
        hWritten[h1] = 1;
        hWritten[h2] = 1;
      }
      addY(h1);
      addY(h2);
    } else {
      // Last column of MT: alpha^i in row i.
      for (let hh = 0; hh < h; hh++) {
        if (!yZero) {
          if (!hWritten[hh]) pb.push(OP_ZERO, hBase + hh, 0, 0);
          pb.push(OP_MULADD, hBase + hh, scratch, alphaPow(hh));
          hWritten[hh] = 1;
        }
        addY(hh);
        mulYAlpha();
      }
    }
  }
  const hv = new Uint8Array(h * u);
  for (let hh = 0; hh < h; hh++) {
    if (!hWritten[hh]) pb.push(OP_ZERO, hBase + hh, 0, 0);
    const o = hh * 8 * uw;
    for (let k = 0; k < u; k++) {
      const q = k >>> 5;
      const sh = k & 31;
      let v = 0;
      for (let i = 0; i < 8; i++) v |= ((hp[o + i * uw + q]! >>> sh) & 1) << i;
      hv[hh * u + k] = v;
    }
    hv[hh * u + colU[ks + hh]!]! ^= 1;
  }

  // ---- The inactive system: binary rows first (GF(2), bit-packed) ----
  const nb = remaining.length;
  const rb = new Uint32Array(nb * uw);
  for (let i = 0; i < nb; i++) rb.set(bits.subarray(remaining[i]! * wd, remaining[i]! * wd + uw), i * uw);
  const used = new Uint8Array(nb);
  const pivRowOfU = new Int32Array(u).fill(-1); // index into remaining
  const binPivots: number[] = [];
  for (let k = 0; k < u; k++) {
    const word = k >>> 5;
    const mask = 1 << (k & 31);
    let pr = -1;
    for (let i = 0; i < nb; i++) {
      if (!used[i] && rb[i * uw + word]! & mask) {
        pr = i;
        break;
      }
    }
    if (pr < 0) continue;
    used[pr] = 1;
    pivRowOfU[k] = pr;
    binPivots.push(k);
    const po = pr * uw;
    for (let i = 0; i < nb; i++) {
      if (used[i] || !(rb[i * uw + word]! & mask)) continue;
      const ro = i * uw;
      for (let q = 0; q < uw; q++) rb[ro + q]! ^= rb[po + q]!;
      pb.push(OP_XOR, remaining[i]!, remaining[pr]!, 0);
    }
  }
  // Eliminate the binary pivot columns from the HDPC rows.
  for (const k of binPivots) {
    const pr = pivRowOfU[k]!;
    const po = pr * uw;
    for (let hh = 0; hh < h; hh++) {
      const coef = hv[hh * u + k]!;
      if (coef === 0) continue;
      const o = hh * u;
      for (let q = 0; q < uw; q++) {
        let word = rb[po + q]!;
        while (word !== 0) {
          const bit = 31 - Math.clz32(word & -word);
          hv[o + q * 32 + bit]! ^= coef;
          word &= word - 1;
        }
      }
      pb.push(coef === 1 ? OP_XOR : OP_MULADD, hBase + hh, remaining[pr]!, coef);
    }
  }
  // The remaining columns from the HDPC rows, Gauss-Jordan over GF(256).
  const hUsed = new Uint8Array(h);
  const hPivOfU = new Int32Array(u).fill(-1);
  for (let k = 0; k < u; k++) {
    if (pivRowOfU[k]! >= 0) continue;
    let ph = -1;
    for (let hh = 0; hh < h; hh++) {
      if (!hUsed[hh] && hv[hh * u + k] !== 0) {
        ph = hh;
        break;
      }
    }
    if (ph < 0) return undefined;
    hUsed[ph] = 1;
    hPivOfU[k] = ph;
    const po = ph * u;
    const v = hv[po + k]!;
    if (v !== 1) {
      const inv = gfInv(v);
      const ir = inv << 8;
      for (let q = 0; q < u; q++) hv[po + q] = MUL[ir | hv[po + q]!]!;
      pb.push(OP_MUL, hBase + ph, 0, inv);
    }
    for (let hh = 0; hh < h; hh++) {
      if (hh === ph) continue;
      const coef = hv[hh * u + k]!;
      if (coef === 0) continue;
      const o = hh * u;
      const cr8 = coef << 8;
      for (let q = 0; q < u; q++) hv[o + q]! ^= MUL[cr8 | hv[po + q]!]!;
      pb.push(coef === 1 ? OP_XOR : OP_MULADD, hBase + hh, hBase + ph, coef);
    }
  }
  const valueSlot = (k: number): number => (pivRowOfU[k]! >= 0 ? remaining[pivRowOfU[k]!]! : hBase + hPivOfU[k]!);
  // Back substitution in the binary pivot rows (each has bits only at columns >= its own).
  for (let t = binPivots.length - 1; t >= 0; t--) {
    const k = binPivots[t]!;
    const pr = pivRowOfU[k]!;
    const po = pr * uw;
    const dst = remaining[pr]!;
    for (let q = 0; q < uw; q++) {
      let word = rb[po + q]!;
      while (word !== 0) {
        const bit = 31 - Math.clz32(word & -word);
        word &= word - 1;
        const j = q * 32 + bit;
        if (j !== k) pb.push(OP_XOR, dst, valueSlot(j), 0);
      }
    }
  }
  for (let k = 0; k < u; k++) pb.push(OP_COPY, cBase + inactCols[k]!, valueSlot(k), 0);

  // ---- Back substitution on the pivot rows ----
  // Either C[c] = C0[c] + (reduced row over the inactive columns) . C_inactive, or the original
  // sparse row with the final values of the earlier pivots; each row takes the cheaper.
  for (let t = 0; t < order.length; t++) {
    const p = order[t]!;
    const c = pivotCol[t]!;
    const dst = cBase + c;
    const po = p * wd;
    let pop = 0;
    for (let q = 0; q < uw; q++) {
      let x = bits[po + q]!;
      x -= (x >>> 1) & 0x55555555;
      x = (x & 0x33333333) + ((x >>> 2) & 0x33333333);
      pop += Math.imul((x + (x >>> 4)) & 0x0f0f0f0f, 0x01010101) >>> 24;
    }
    if (pop < rs[p + 1]! - rs[p]! - (isZero[p] ? 1 : 0)) {
      for (let q = 0; q < uw; q++) {
        let word = bits[po + q]!;
        while (word !== 0) {
          const bit = 31 - Math.clz32(word & -word);
          word &= word - 1;
          pb.push(OP_XOR, dst, cBase + inactCols[q * 32 + bit]!, 0);
        }
      }
      continue;
    }
    let first = true;
    if (!isZero[p]) {
      pb.push(OP_COPY, dst, p, 0);
      first = false;
    }
    for (let i = rs[p]!; i < rs[p + 1]!; i++) {
      const x = rc[i]!;
      if (x === c) continue;
      pb.push(first ? OP_COPY : OP_XOR, dst, cBase + x, 0);
      first = false;
    }
    if (first) pb.push(OP_ZERO, dst, 0, 0);
  }
  return { plan: pb.finish(compact), layout, inactive: u };
}

// Row choice of 5.4.2.2 when no row has r = 1 (r = nonzeros in V). For r = 2: a row of a largest
// component of the graph whose nodes are the V columns and whose edges are the rows with r = 2
// (choosing it inactivates one column and then peels the whole component as r = 1 rows).
// Otherwise: a row with the smallest original degree. Both compact the bucket (drop rows that
// were chosen or whose r changed) and remove the chosen row from it.

/**
 * The rows that reached r = 2, with their two V columns once known (ea = -1 before), and a
 * union-find forest over the columns (parent < 0: a root, -parent = component size).
 */
class Components {
  readonly rows: Int32Array;
  readonly ea: Int32Array;
  readonly eb: Int32Array;
  readonly parent: Int32Array;
  length = 0;
  constructor(l: number, n: number) {
    // A row enters at most twice (during the inactivation of the PI columns and once more).
    this.rows = new Int32Array(2 * n);
    this.ea = new Int32Array(2 * n);
    this.eb = new Int32Array(2 * n);
    this.parent = new Int32Array(l);
  }
  add(r: number): void {
    this.rows[this.length] = r;
    this.ea[this.length++] = -1;
  }
}

function pickTwo(cc: Components, colState: Uint8Array, rs: Int32Array, rc: Int32Array): number {
  const { rows, ea, eb, parent } = cc;
  // Compact: an entry is live iff both V columns are still in V (a chosen row, or one whose r
  // dropped below 2, lost one of them; r never grows). Reset the forest on the live ends.
  let m = 0;
  for (let i = 0; i < cc.length; i++) {
    const r = rows[i]!;
    let a = ea[i]!;
    let b = eb[i]!;
    if (a < 0) {
      let cnt = 0;
      for (let j = rs[r]!; j < rs[r + 1]!; j++) {
        const x = rc[j]!;
        if (colState[x] !== 0) continue;
        if (cnt++ === 0) a = x;
        else b = x;
      }
      if (cnt !== 2) continue;
    } else if (colState[a] !== 0 || colState[b] !== 0) continue;
    rows[m] = r;
    ea[m] = a;
    eb[m++] = b;
    parent[a] = -1;
    parent[b] = -1;
  }
  cc.length = m;
  for (let i = 0; i < m; i++) {
    let a = ea[i]!;
    let b = eb[i]!;
    while (parent[a]! >= 0) {
      const g = parent[a]!;
      if (parent[g]! >= 0) parent[a] = parent[g]!;
      a = g;
    }
    while (parent[b]! >= 0) {
      const g = parent[b]!;
      if (parent[g]! >= 0) parent[b] = parent[g]!;
      b = g;
    }
    if (a === b) continue;
    if (parent[a]! > parent[b]!) {
      const t = a;
      a = b;
      b = t;
    }
    parent[a]! += parent[b]!;
    parent[b] = a;
  }
  let best = -1;
  let bestSize = 0;
  for (let i = m - 1; i >= 0; i--) {
    let x = ea[i]!;
    while (parent[x]! >= 0) x = parent[x]!;
    if (-parent[x]! > bestSize) {
      bestSize = -parent[x]!;
      best = i;
    }
  }
  if (best < 0) return -1;
  const r = rows[best]!;
  rows[best] = rows[m - 1]!;
  ea[best] = ea[m - 1]!;
  eb[best] = eb[m - 1]!;
  cc.length = m - 1;
  return r;
}

function pickMinDegree(bucket: number[], d: number, chosen: Uint8Array, vdeg: Int32Array, rs: Int32Array): number {
  let m = 0;
  let best = -1;
  let bestDeg = 0x7fffffff;
  let bestAt = -1;
  for (let i = 0; i < bucket.length; i++) {
    const r = bucket[i]!;
    if (chosen[r] || vdeg[r] !== d) continue;
    const od = rs[r + 1]! - rs[r]!;
    if (od < bestDeg) {
      bestDeg = od;
      best = r;
      bestAt = m;
    }
    bucket[m++] = r;
  }
  if (best >= 0) {
    bucket[bestAt] = bucket[m - 1]!;
    m--;
  }
  bucket.length = m;
  return best;
}
