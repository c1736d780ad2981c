// Object and block partitioning of RFC 6330 section 4.4.1.2.
import { fecError } from './errors.js';
import { MAX_K } from './rand.js';
import type { Oti } from './oti.js';
import { validateOti } from './oti.js';

/** Partition[I, J] of 4.4.1.2: I split into JL parts of size IL and JS parts of size IS. */
export function partition(i: number, j: number): { il: number; is: number; jl: number; js: number } {
  const il = Math.ceil(i / j);
  const is = Math.floor(i / j);
  const jl = i - is * j;
  return { il, is, jl, js: j - jl };
}

export interface SourceBlock {
  /** Source block number. */
  readonly sbn: number;
  /** Offset of the block's first byte in the object. */
  readonly offset: number;
  /** Bytes of the object in this block (the last block may be shorter than k * T). */
  readonly length: number;
  /** Number of source symbols K of this block. */
  readonly k: number;
}

/** Source blocks of an object (4.4.1.2): the first ZL blocks have KL symbols, the other ZS have KS. */
export function blockPartition(oti: Oti): SourceBlock[] {
  validateOti(oti);
  const { transferLength: f, symbolSize: t, sourceBlocks: z } = oti;
  const kt = Math.ceil(f / t);
  const { il: kl, is: ks, jl: zl } = partition(kt, z);
  const out: SourceBlock[] = [];
  let offset = 0;
  for (let sbn = 0; sbn < z; sbn++) {
    const k = sbn < zl ? kl : ks;
    const length = Math.max(0, Math.min(k * t, f - offset));
    out.push({ sbn, offset, length, k });
    offset += k * t;
  }
  return out;
}

/**
 * Sub-symbol sizes in bytes (4.4.1.2): the symbol of T bytes is split into N sub-symbols, the
 * first NL of TL*Al bytes and the other NS of TS*Al bytes.
 */
export function subSymbolSizes(symbolSize: number, subBlocks: number, alignment: number): number[] {
  const { il: tl, is: ts, jl: nl } = partition(symbolSize / alignment, subBlocks);
  const out: number[] = [];
  for (let n = 0; n < subBlocks; n++) out.push((n < nl ? tl : ts) * alignment);
  return out;
}

/**
 * Byte permutation between a source block (K*T bytes, sub-block n holding K contiguous
 * sub-symbols of size T_n) and its K source symbols (symbol i = concatenation over n of
 * sub-symbol i of sub-block n). With N = 1 both are the same bytes.
 */
export function blockToSymbols(block: Uint8Array, k: number, t: number, subs: number[], out: Uint8Array, outStride: number, outBase: number): void {
  let srcOff = 0;
  let symOff = 0;
  for (const tn of subs) {
    for (let i = 0; i < k; i++) {
      const from = srcOff + i * tn;
      const to = outBase + i * outStride + symOff;
      const end = Math.min(from + tn, block.length);
      if (end > from) out.set(block.subarray(from, end), to);
    }
    srcOff += k * tn;
    symOff += tn;
  }
  void t;
}

/** Inverse of blockToSymbols: writes length bytes of the block from the symbol array. */
export function symbolsToBlock(syms: Uint8Array, symStride: number, symBase: number, k: number, subs: number[], out: Uint8Array): void {
  let dstOff = 0;
  let symOff = 0;
  for (const tn of subs) {
    for (let i = 0; i < k; i++) {
      const to = dstOff + i * tn;
      if (to >= out.length) break;
      const from = symBase + i * symStride + symOff;
      const n = Math.min(tn, out.length - to);
      out.set(syms.subarray(from, from + n), to);
    }
    dstOff += k * tn;
    symOff += tn;
  }
}

/** Largest object RFC 6330 allows with 8-bit Z (see docs/raptorq.md: Z = 256 cannot be encoded). */
export const MAX_TRANSFER_LENGTH = MAX_K * 65535 * 255;

export function checkBlockArgs(k: number, symbolSize: number, subBlocks: number, alignment: number): void {
  if (!Number.isInteger(k) || k < 1 || k > MAX_K) throw fecError('blockSize', `K=${k} outside 1..${MAX_K}`);
  if (!Number.isInteger(alignment) || alignment < 1 || alignment > 255) throw fecError('argument', `alignment ${alignment} outside 1..255`);
  if (!Number.isInteger(symbolSize) || symbolSize < 1 || symbolSize > 65535 || symbolSize % alignment !== 0)
    throw fecError('symbolSize', `symbol size ${symbolSize} is not a multiple of Al=${alignment} in 1..65535`);
  if (!Number.isInteger(subBlocks) || subBlocks < 1 || subBlocks > symbolSize / alignment)
    throw fecError('argument', `N=${subBlocks} outside 1..T/Al=${symbolSize / alignment}`);
}
