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

/**
 * Puts a plan that another thread recorded with encoderPlan for the same K' into this thread's
 * cache (a sender records it while it hashes the object: src/transfer/plans.ts). False when
 * one was cached already: that one stays.
 */
export function adoptEncoderPlan(kPrime: number, r: SolveResult): boolean {
  if (planCache.has(kPrime)) return false;
  planCache.set(kPrime, r);
  if (planCache.size > PLAN_CACHE_LIMIT) planCache.delete(planCache.keys().next().value!);
  return true;
}

/** Whether the plan for K' is cached (encoderPlan returns it without a solve). */
export function hasEncoderPlan(kPrime: number): boolean {
  return planCache.has(kPrime);
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
    const w = sourceRows(k, symbolSize);
    // blockToSymbols leaves the zero padding of a short last symbol (and of sub-symbols) alone.
    w.arena.bytes.fill(0, w.bp.s * symbolSize, (w.bp.s + k) * symbolSize);
    blockToSymbols(source, k, symbolSize, this.subs, w.arena.bytes, symbolSize, w.bp.s * symbolSize);
    w.arena.run(w.plan);
    this.inter = new IntermediateSymbols(w.bp, w.arena, w.layout.cBase, w.layout.scratch);
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

/**
 * An arena for one block's encoding with the plan for its K': LT row i (slot S + i) is where
 * source symbol i goes, and rows K..K'-1 (padding) are zero. The arena may be reused memory, so
 * the padding rows are cleared; the caller fills rows 0..K-1.
 */
function sourceRows(k: number, symbolSize: number): { bp: BlockParams; plan: SolveResult['plan']; layout: SolveResult['layout']; arena: Arena } {
  const bp = blockParams(k);
  const { plan, layout } = encoderPlan(bp);
  const arena = createArena(layout.slots, symbolSize);
  arena.bytes.fill(0, (bp.s + k) * symbolSize, (bp.s + bp.kPrime) * symbolSize);
  return { bp, plan, layout, arena };
}

/** Makes repair symbols (ESI >= K) of one block from its intermediate symbols. */
export interface RepairEncoder {
  readonly k: number;
  readonly symbolSize: number;
  symbolInto(esi: number, out: Uint8Array, offset?: number): void;
}

/**
 * A block encoder built in slices, for a paced sender that prepares the repair round's encoders
 * in its idle time instead of stopping the stream for each block's intermediate symbols (several
 * milliseconds a block at K = 2048: docs/decisions/0004-encoders-prepared-in-slices.md). Only
 * for N = 1 (one sub-block), where source symbol i is block bytes [i*T, i*T + T): the caller
 * writes the block's bytes into `sourceView` (zero beyond its end), then calls `step` until it
 * returns true. The result makes repair symbols only (the source symbols are the block's bytes).
 */
export class EncoderBuild {
  readonly k: number;
  readonly symbolSize: number;
  /** K*T bytes of the arena where the block's bytes go (source symbol i at i*T). */
  readonly sourceView: Uint8Array;
  private readonly rows: ReturnType<typeof sourceRows>;
  private done = 0;
  private encoder: RepairEncoder | undefined;

  constructor(k: number, symbolSize: number) {
    checkBlockArgs(k, symbolSize, 1, 1);
    this.k = k;
    this.symbolSize = symbolSize;
    this.rows = sourceRows(k, symbolSize);
    const at = this.rows.bp.s * symbolSize;
    this.sourceView = this.rows.arena.bytes.subarray(at, at + k * symbolSize);
  }

  /** Plan operations in all (a slice of `step` is a share of them). */
  get operations(): number {
    return this.rows.plan.length;
  }

  /**
   * Replays up to `maxOps` more operations of the plan on the loaded source (about 0.1 µs per
   * operation per KB of symbol); true once the intermediate symbols are complete.
   */
  step(maxOps: number): boolean {
    if (this.encoder) return true;
    const { plan, arena, bp, layout } = this.rows;
    const to = Math.min(plan.length, this.done + Math.max(1, Math.floor(maxOps)));
    arena.run(plan, this.done, to);
    this.done = to;
    if (to < plan.length) return false;
    const inter = new IntermediateSymbols(bp, arena, layout.cBase, layout.scratch);
    const k = this.k;
    this.encoder = {
      k,
      symbolSize: this.symbolSize,
      symbolInto(esi: number, out: Uint8Array, offset = 0): void {
        if (!Number.isInteger(esi) || esi < k || esi > MAX_ESI) throw fecError('esi', `repair ESI ${esi} outside ${k}..2^24-1`);
        if (!Number.isInteger(offset) || offset < 0 || offset + inter.arena.stride > out.length) throw fecError('argument', 'output buffer too small');
        inter.symbolInto(esi + bp.kPrime - k, out, offset);
      },
    };
    return true;
  }

  /** The encoder, finishing the plan first if needed. */
  finish(): RepairEncoder {
    this.step(Infinity);
    return this.encoder as RepairEncoder;
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
