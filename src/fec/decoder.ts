// RaptorQ decoder of RFC 6330 5.4 for one source block.
import { createArena, type Arena } from './arena.js';
import { fecError } from './errors.js';
import { defaultAlignment } from './encoder.js';
import { OP_COPY, OP_XOR, PlanBuilder, recyclePlan, type Plan } from './plan.js';
import { checkBlockArgs, subSymbolSizes, symbolsToBlock } from './partition.js';
import { MAX_ESI } from './payload-id.js';
import type { BlockParams } from './rand.js';
import { blockParams, ltIndices } from './rand.js';
import { solve } from './solver.js';

// The receive buffer of the last decoded block is kept for the next decoder (a receiver decodes
// block after block of about the same size; taken when 1x to 2x the size needed): writing fresh
// memory costs a page fault per 4 KiB, several times the copy itself (docs/benchmarks.md, "Where
// a decode's time goes"). One buffer of at most 64 MiB; only this module references it once its
// decoder is done, and a decoder reads only the bytes it has written.
const SPARE_LIMIT = 64 << 20;
let spare: Uint8Array | undefined;

function takeStore(length: number): Uint8Array {
  const s = spare;
  if (s !== undefined && s.length >= length && s.length <= 2 * length) {
    spare = undefined;
    return s;
  }
  return new Uint8Array(length);
}

function spareStore(store: Uint8Array): void {
  if (store.length <= SPARE_LIMIT) spare = store;
}

/**
 * Collects encoding symbols of one block and decodes once they determine it. Memory: the
 * received symbols (about K*T bytes, more with overhead), plus about 2*K'*T while decoding.
 */
export class BlockDecoder {
  readonly k: number;
  readonly symbolSize: number;
  readonly blockLength: number;
  private readonly bp: BlockParams;
  private readonly subs: number[];
  private esis: number[] = [];
  /** Received symbols back to back, in arrival order. */
  private store: Uint8Array;
  private seen = new Set<number>();
  private sourceCount = 0;
  private attemptedAt = -1;
  private decoded: Uint8Array | undefined;
  /** The store is the caller's (decodeFrom): never recycled. */
  private external = false;
  /** Where toBlock writes the block (decodeFrom's `out`); a fresh buffer when unset. */
  private output: Uint8Array | undefined;
  /** Number of decode attempts that found the received symbols insufficient. */
  failures = 0;
  /** The working memory of an in-place decode (prepareInPlace .. release). */
  private prepared: Recorded | undefined;

  constructor(k: number, symbolSize: number, blockLength: number, subBlocks = 1, alignment = defaultAlignment(symbolSize)) {
    checkBlockArgs(k, symbolSize, subBlocks, alignment);
    if (!Number.isInteger(blockLength) || blockLength < 0 || blockLength > k * symbolSize)
      throw fecError('blockSize', `block length ${blockLength} outside 0..K*T = ${k * symbolSize}`);
    this.k = k;
    this.symbolSize = symbolSize;
    this.blockLength = blockLength;
    this.bp = blockParams(k);
    this.subs = subSymbolSizes(symbolSize, subBlocks, alignment);
    this.store = new Uint8Array(Math.min(k + 2, 64) * symbolSize);
  }

  /** Distinct symbols received so far. */
  get received(): number {
    return this.esis.length;
  }

  get done(): boolean {
    return this.decoded !== undefined;
  }

  /**
   * Adds one encoding symbol (copied). Returns true once the block is decoded; duplicates and
   * symbols arriving after that are ignored.
   */
  add(esi: number, symbol: Uint8Array): boolean {
    if (!Number.isInteger(esi) || esi < 0 || esi > MAX_ESI) throw fecError('esi', `ESI ${esi} outside 0..2^24-1`);
    if (!(symbol instanceof Uint8Array) || symbol.length !== this.symbolSize)
      throw fecError('symbolSize', `symbol of ${symbol?.length} bytes, expected T=${this.symbolSize}`);
    if (this.decoded !== undefined) return true;
    if (this.seen.has(esi)) return false;
    this.seen.add(esi);
    const t = this.symbolSize;
    const at = this.esis.length * t;
    if (at + t > this.store.length) {
      const grown = takeStore(Math.max(this.store.length * 2, (this.k + 8) * t));
      grown.set(this.store);
      this.store = grown;
    }
    this.store.set(symbol, at);
    this.esis.push(esi);
    if (esi < this.k) this.sourceCount++;
    return this.tryDecode();
  }

  /**
   * Decodes from `count` symbols lying back to back in `symbols`, used in place (not copied,
   * not modified before they are read), with their ESIs. The block goes into `out` when given
   * (at least blockLength bytes; it may overlap `symbols`, which are all read first). Returns
   * the block, or undefined when these symbols do not determine it. A receiver that already
   * holds a block's symbols in one buffer saves the K*T copy and the K*T result buffer of add().
   */
  decodeFrom(esis: ArrayLike<number>, symbols: Uint8Array, count: number, out?: Uint8Array): Uint8Array | undefined {
    const t = this.symbolSize;
    if (this.esis.length > 0 || this.decoded !== undefined || this.prepared !== undefined) throw fecError('argument', 'decodeFrom needs a fresh decoder');
    if (!(symbols instanceof Uint8Array) || !Number.isInteger(count) || count < 0 || count > esis.length || count * t > symbols.length)
      throw fecError('argument', `${count} symbols of T=${t} do not fit the buffer`);
    if (out !== undefined && out.length < this.blockLength) throw fecError('argument', 'output buffer too small');
    this.esis = this.takeEsis(esis, count);
    this.store = symbols;
    this.external = true;
    this.output = out;
    return this.tryDecode() ? this.decoded : undefined;
  }

  /** The first `count` ESIs, checked (range, no repeats) and counted in; for a fresh decoder. */
  private takeEsis(esis: ArrayLike<number>, count: number): number[] {
    const list: number[] = [];
    for (let i = 0; i < count; i++) {
      const esi = esis[i]!;
      if (!Number.isInteger(esi) || esi < 0 || esi > MAX_ESI) throw fecError('esi', `ESI ${esi} outside 0..2^24-1`);
      if (this.seen.has(esi)) throw fecError('argument', `ESI ${esi} appears twice`);
      this.seen.add(esi);
      list.push(esi);
      if (esi < this.k) this.sourceCount++;
    }
    return list;
  }

  /** Attempts a decode if at least K symbols are in and nothing new failed already. */
  tryDecode(): boolean {
    if (this.decoded !== undefined) return true;
    if (this.esis.length < this.k || this.attemptedAt === this.esis.length) return false;
    this.attemptedAt = this.esis.length;
    const out = this.sourceCount === this.k ? this.fromSource() : this.solve();
    if (out === undefined) {
      this.failures++;
      return false;
    }
    this.decoded = out;
    this.esis = [];
    if (!this.external) spareStore(this.store);
    this.store = new Uint8Array(0);
    this.seen = new Set();
    return true;
  }

  result(): Uint8Array | undefined {
    return this.decoded;
  }

  private fromSource(): Uint8Array {
    const t = this.symbolSize;
    const syms = new Uint8Array(this.k * t);
    for (let i = 0; i < this.esis.length; i++) {
      const esi = this.esis[i]!;
      if (esi < this.k) syms.set(this.store.subarray(i * t, (i + 1) * t), esi * t);
    }
    return this.toBlock(syms);
  }

  private toBlock(syms: Uint8Array): Uint8Array {
    const out = this.output ? this.output.subarray(0, this.blockLength) : undefined;
    if (this.subs.length === 1) {
      if (!out) return syms.slice(0, this.blockLength);
      out.set(syms.subarray(0, this.blockLength));
      return out;
    }
    const block = out ?? new Uint8Array(this.blockLength);
    symbolsToBlock(syms, this.symbolSize, 0, this.k, this.subs, block);
    return block;
  }

  private solve(): Uint8Array | undefined {
    const t = this.symbolSize;
    const n = this.esis.length;
    const rec = this.record(this.esis, n);
    if (rec === undefined) return undefined;
    const { arena, at, have } = rec;
    const bytes = arena.bytes;
    bytes.set(this.store.subarray(0, n * t), at);
    this.recover(rec);
    // Received source symbols are copied in after the plan (its input rows are working memory).
    for (let i = 0; i < n; i++) {
      const esi = this.esis[i]!;
      if (esi < this.k && have[esi]) bytes.set(this.store.subarray(i * t, (i + 1) * t), esi * t);
    }
    const block = this.toBlock(bytes.subarray(0, this.k * t));
    arena.release();
    return block;
  }

  /**
   * Records the plan that computes the intermediate symbols from these `n` ESIs and makes its
   * working memory; undefined when they do not determine the block. The symbols go, in the order
   * of `esis`, at byte `at` of the arena.
   */
  private record(esis: ArrayLike<number>, n: number): Recorded | undefined {
    const { bp, k } = this;
    const t = this.symbolSize;
    const pad = bp.kPrime - k;
    const isis = new Int32Array(pad + n);
    for (let i = 0; i < pad; i++) isis[i] = k + i;
    const have = new Uint8Array(k);
    for (let i = 0; i < n; i++) {
      const esi = esis[i]!;
      isis[pad + i] = esi < k ? esi : esi + pad;
      if (esi < k) have[esi] = 1;
    }
    // The plan runs once: no compact copy of it.
    const solved = solve(bp, isis, (i) => i < pad, false);
    if (solved === undefined) return undefined;
    const arena = createArena(solved.layout.slots, t);
    return { arena, plan: solved.plan, cBase: solved.layout.cBase, at: (bp.s + pad) * t, have };
  }

  /**
   * Runs the recorded plan, then writes each source symbol that was not received into its row
   * slot (the first K slots: S + K' - K + received >= K, and only the intermediate symbols are
   * live after the plan) as Enc(ISI) of C (5.3.5.3).
   */
  private recover(rec: Recorded): void {
    const { bp, k } = this;
    const { arena, plan, cBase, have } = rec;
    arena.run(plan);
    recyclePlan(plan);
    const extra = new PlanBuilder(k * 8, true);
    const tup = new Int32Array(6);
    const cols = new Int32Array(64);
    for (let i = 0; i < k; i++) {
      if (have[i]) continue;
      const m = ltIndices(bp, i, tup, cols);
      extra.push(OP_COPY, i, cBase + cols[0]!, 0);
      for (let j = 1; j < m; j++) extra.push(OP_XOR, i, cBase + cols[j]!, 0);
    }
    const fill = extra.finish(false);
    arena.run(fill);
    recyclePlan(fill);
  }

  /**
   * In-place decoding, for a receiver that already holds the received source symbols of a block
   * with one sub-block (N = 1) and needs only the missing ones: records the plan for the first
   * `count` of `esis` and returns where their symbols go, in that order (count*T bytes of the
   * decoder's own working memory: no K*T buffer of the caller's, no copy), or undefined when
   * these ESIs cannot determine the block (then nothing is kept). Fill it, then decodeMissing().
   */
  prepareInPlace(esis: ArrayLike<number>, count: number = esis.length): Uint8Array | undefined {
    if (this.subs.length !== 1) throw fecError('argument', 'prepareInPlace needs one sub-block (N = 1)');
    if (this.esis.length > 0 || this.decoded !== undefined || this.prepared !== undefined) throw fecError('argument', 'prepareInPlace needs a fresh decoder');
    if (!Number.isInteger(count) || count < 0 || count > esis.length) throw fecError('argument', `count ${count} outside 0..${esis.length}`);
    this.takeEsis(esis, count);
    const rec = count < this.k ? undefined : this.record(esis, count);
    if (rec === undefined) {
      this.failures++;
      return undefined;
    }
    this.prepared = rec;
    return rec.arena.bytes.subarray(rec.at, rec.at + count * this.symbolSize);
  }

  /**
   * Decodes what prepareInPlace set up. Returns K*T bytes of the decoder's memory in which
   * source symbol i (bytes i*T .. i*T+T, zero padded past the block's end) is valid for every
   * source ESI i that was not among the prepared ESIs; the other rows hold working data. Valid
   * until release().
   */
  decodeMissing(): Uint8Array {
    const rec = this.prepared;
    if (rec === undefined) throw fecError('argument', 'decodeMissing without prepareInPlace');
    this.recover(rec);
    return rec.arena.bytes.subarray(0, this.k * this.symbolSize);
  }

  /** Hands an in-place decode's working memory back (the views it returned become invalid). */
  release(): void {
    this.prepared?.arena.release();
    this.prepared = undefined;
  }
}

interface Recorded {
  arena: Arena;
  plan: Plan;
  cBase: number;
  /** Byte offset in the arena of the first received symbol. */
  at: number;
  /** have[i] = 1 when source symbol i was received. */
  have: Uint8Array;
}

