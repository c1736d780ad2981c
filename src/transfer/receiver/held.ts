import type { BlockSpan } from './store.js';

/**
 * The symbols held for one block. Source ESIs (< K) live in typed arrays (5 bytes per source
 * symbol: a 1 GiB object costs ~1 MB), only the few repair ESIs in a Set; per-symbol JS
 * objects would cost more than the 100 MB a device may have.
 */
export class HeldSymbols {
  /** 0 absent, 1 kept by the store (keepSymbol), 2 at its place in the object (writeSource). */
  private state: Uint8Array | undefined;
  private readonly repair = new Set<number>();
  size = 0;
  /** Source symbols at their place. */
  placed = 0;
  constructor(private readonly k: number) {}

  has(esi: number): boolean {
    return esi < this.k ? (this.state?.[esi] ?? 0) !== 0 : this.repair.has(esi);
  }

  isPlaced(esi: number): boolean {
    return esi < this.k && this.state?.[esi] === 2;
  }

  private source(): Uint8Array {
    return (this.state ??= new Uint8Array(this.k));
  }

  add(esi: number): void {
    if (this.has(esi)) return;
    if (esi < this.k) this.source()[esi] = 1;
    else this.repair.add(esi);
    this.size += 1;
  }

  addPlaced(esi: number): void {
    if (this.has(esi)) return;
    this.source()[esi] = 2;
    this.size += 1;
    this.placed += 1;
  }

  delete(esi: number): void {
    if (!this.has(esi)) return;
    if (esi < this.k) {
      if (this.state?.[esi] === 2) this.placed -= 1;
      (this.state as Uint8Array)[esi] = 0;
    } else this.repair.delete(esi);
    this.size -= 1;
  }
}

/** A source block being received. */
export interface BlockState extends BlockSpan {
  done: boolean;
  held: HeldSymbols;
  /** Symbols kept by the store: parallel arrays ESI -> the store's handle, in the order kept. */
  keptEsi: number[];
  keptRef: number[];
  /** The number of symbols the next decode attempt takes (K, then K+1, ... after failures). */
  nextAttempt: number;
  /** A decode of this block is waiting for its turn or running. */
  decoding: boolean;
}

export function newBlock(span: BlockSpan): BlockState {
  return { sbn: span.sbn, offset: span.offset, length: span.length, k: span.k, done: false, held: new HeldSymbols(span.k), keptEsi: [], keptRef: [], nextAttempt: span.k, decoding: false };
}

/** Forget every symbol held for a block (it is done, or its symbols are collected again). */
export function forgetSymbols(b: BlockState): void {
  b.held = new HeldSymbols(b.k);
  b.keptEsi = [];
  b.keptRef = [];
}
