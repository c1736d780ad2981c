// RaptorQ encoder of RFC 6330 5.3: intermediate symbols by a plan cached per K', then any ESI.
import type { Arena } from './arena.js';
import { createArena } from './arena.js';
import { fecError } from './errors.js';
import { blockToSymbols, checkBlockArgs, subSymbolSizes } from './partition.js';
import { MAX_ESI } from './payload-id.js';
import type { BlockParams } from './rand.js';
import { blockParams, ltIndices } from './rand.js';
import type { SolveResult } from './solver.js';
import { solve } from './solver.js';

const PLAN_CACHE_LIMIT = 8;
const planCache = new Map<number, SolveResult>();

/** The encoder's plan for K' (LT rows for ISI 0..K'-1), recorded once and reused (LRU of 8). */
export function encoderPlan(bp: BlockParams): SolveResult {
  let r = planCache.get(bp.kPrime);
  if (r !== undefined) {
    planCache.delete(bp.kPrime);
    planCache.set(bp.kPrime, r);
    return r;
  }
  const isis = new Int32Array(bp.kPrime);
  for (let i = 0; i < bp.kPrime; i++) isis[i] = i;
  const solved = solve(bp, isis);
  // 5.6: the systematic indices guarantee that the K' source rows determine C.
  if (solved === undefined) throw new Error(`RFC 6330 table row K'=${bp.kPrime} did not solve`);
  r = solved;
  planCache.set(bp.kPrime, r);
  if (planCache.size > PLAN_CACHE_LIMIT) planCache.delete(planCache.keys().next().value!);
  return r;
}

/** Drops cached plans (benchmarks use it to measure a cold first block). */
export function clearPlanCache(): void {
  planCache.clear();
}

export function defaultAlignment(symbolSize: number): number {
  return symbolSize % 4 === 0 ? 4 : symbolSize % 2 === 0 ? 2 : 1;
}

/** Computes the intermediate symbols of one block; Enc of 5.3.5.3 on them gives any symbol. */
export class IntermediateSymbols {
  readonly bp: BlockParams;
  readonly arena: Arena;
  readonly cBase: number;
  readonly scratch: number;
  private readonly tup = new Int32Array(6);
  private readonly cols = new Int32Array(64);
  constructor(bp: BlockParams, arena: Arena, cBase: number, scratch: number) {
    this.bp = bp;
    this.arena = arena;
    this.cBase = cBase;
    this.scratch = scratch;
  }
  /** Writes the encoding symbol with internal symbol ID isi to out (uses the scratch slot). */
  symbolInto(isi: number, out: Uint8Array, outOffset = 0): void {
    const { arena, cBase, scratch } = this;
    const t = arena.stride;
    const m = ltIndices(this.bp, isi, this.tup, this.cols);
    const bytes = arena.bytes;
    const acc = scratch * t;
    for (let j = 0; j < m; j++) this.cols[j] = (cBase + this.cols[j]!) * t;
    arena.xorSum(acc, this.cols, m);
    out.set(bytes.subarray(acc, acc + t), outOffset);
  }
}

/**
 * Encoder for one source block: K source symbols of T bytes (the block's bytes, zero-padded to
 * K*T, split into N sub-blocks as in 4.4.1.2). Memory: about 2*K'*T bytes.
 */
export class BlockEncoder {
  readonly k: number;
  readonly symbolSize: number;
  private readonly source: Uint8Array;
  private readonly subs: number[];
  private readonly inter: IntermediateSymbols;
  private closed = false;
  constructor(source: Uint8Array, k: number, symbolSize: number, subBlocks = 1, alignment = defaultAlignment(symbolSize)) {
    checkBlockArgs(k, symbolSize, subBlocks, alignment);
    if (!(source instanceof Uint8Array) || source.length > k * symbolSize)
      throw fecError('blockSize', `source block of ${source.length} bytes exceeds K*T = ${k * symbolSize}`);
    this.k = k;
    this.symbolSize = symbolSize;
    this.source = source;
    this.subs = subSymbolSizes(symbolSize, subBlocks, alignment);
    const bp = blockParams(k);
    const { plan, layout } = encoderPlan(bp);
    const arena = createArena(layout.slots, symbolSize);
    // LT row i (slot S + i) holds source symbol i; rows K..K'-1 are padding (zero). The arena may
    // be reused memory, so the rows are cleared first.
    arena.bytes.fill(0, bp.s * symbolSize, (bp.s + bp.kPrime) * symbolSize);
    blockToSymbols(source, k, symbolSize, this.subs, arena.bytes, symbolSize, bp.s * symbolSize);
    arena.run(plan);
    this.inter = new IntermediateSymbols(bp, arena, layout.cBase, layout.scratch);
  }

  /**
   * Returns the block's working memory to a pool for the next block (optional: without it the
   * memory is simply garbage-collected). Repair symbols cannot be produced afterwards.
   */
  close(): void {
    this.inter.arena.release();
    this.closed = true;
  }

  /** Encoding symbol ESI (source symbols for ESI < K, repair symbols after). */
  symbol(esi: number): Uint8Array {
    const out = new Uint8Array(this.symbolSize);
    this.symbolInto(esi, out, 0);
    return out;
  }

  symbolInto(esi: number, out: Uint8Array, offset = 0): void {
    if (!Number.isInteger(esi) || esi < 0 || esi > MAX_ESI) throw fecError('esi', `ESI ${esi} outside 0..2^24-1`);
    if (!Number.isInteger(offset) || offset < 0 || offset + this.symbolSize > out.length) throw fecError('argument', 'output buffer too small');
    if (esi < this.k) {
      out.fill(0, offset, offset + this.symbolSize);
      sourceSymbol(this.source, this.k, this.subs, esi, out, offset);
      return;
    }
    if (this.closed) throw fecError('closed', 'BlockEncoder used after close()');
    // Repair: ISI = ESI + (K' - K), skipping the padding symbols (5.3.1).
    this.inter.symbolInto(esi + this.inter.bp.kPrime - this.k, out, offset);
  }
}

/** Source symbol i of a block (concatenation of sub-symbol i of each sub-block), into out. */
function sourceSymbol(block: Uint8Array, k: number, subs: number[], i: number, out: Uint8Array, offset: number): void {
  let blockOff = 0;
  let symOff = 0;
  for (const tn of subs) {
    const from = blockOff + i * tn;
    const end = Math.min(from + tn, block.length);
    if (end > from) out.set(block.subarray(from, end), offset + symOff);
    blockOff += k * tn;
    symOff += tn;
  }
}
