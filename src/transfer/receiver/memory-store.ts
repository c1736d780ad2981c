import { StorageError } from '../../errors.js';
import type { ReceiverStore, StoreLayout, StoreResume } from './store.js';

/** Kept symbols are stored this many to a chunk: no allocation per symbol, no copy on growth. */
const CHUNK_SYMBOLS = 256;

export interface MemoryStoreOptions {
  /** Refuse objects larger than this many bytes (default 256 MiB): StorageError ERR_STORAGE_FULL. */
  maxBytes?: number;
}

/**
 * A store in memory: the object's bytes in one buffer, kept symbols in chunks. For unit tests of
 * the receiver, and for objects small enough to be received without touching a file system.
 * Everything it holds survives a receiver that stops (`close`, `abandon`): a new receiver given
 * the same store resumes, as one given the same spool directory does.
 */
export class MemoryStore implements ReceiverStore {
  private readonly maxBytes: number;
  private description: Uint8Array | undefined;
  private layout: StoreLayout | undefined;
  private data = new Uint8Array(0);
  /** Per block, 1 for each unit (source symbol, N = 1) at its place. */
  private placed: Uint8Array[] = [];
  private done: Uint8Array = new Uint8Array(0);
  private chunks: Uint8Array[] = [];
  /** Per kept symbol (by handle), its SBN and ESI. */
  private keptSbn: number[] = [];
  private keptEsi: number[] = [];
  private delivered: Uint8Array | undefined;

  constructor(opts: MemoryStoreOptions = {}) {
    this.maxBytes = opts.maxBytes ?? 256 * 2 ** 20;
  }

  /** The object, once the receiver committed it (verified); undefined before. */
  get result(): Uint8Array | undefined {
    return this.delivered;
  }

  /** Symbols kept so far (repair symbols, or all with sub-blocks). */
  get keptSymbols(): number {
    return this.keptEsi.length;
  }

  saved(): Uint8Array | undefined {
    return this.description;
  }

  open(description: Uint8Array, layout: StoreLayout, resume: boolean): StoreResume | undefined {
    if (resume && this.layout) {
      this.layout = layout;
      return this.report(layout);
    }
    if (layout.size > this.maxBytes) throw new StorageError(`object of ${layout.size} bytes is larger than the memory store (${this.maxBytes})`, 'ERR_STORAGE_FULL');
    this.clear();
    this.description = new Uint8Array(description);
    this.layout = layout;
    this.data = new Uint8Array(layout.size);
    this.placed = layout.blocks.map((b) => new Uint8Array(b.k));
    this.done = new Uint8Array(layout.blocks.length);
    return resume ? this.report(layout) : undefined;
  }

  private report(layout: StoreLayout): StoreResume {
    const blocks = layout.blocks.map((b) => {
      const done = this.done[b.sbn] === 1;
      const placed: number[] = [];
      const keptEsis: number[] = [];
      const keptRefs: number[] = [];
      if (!done) {
        const at = this.placed[b.sbn] as Uint8Array;
        for (let esi = 0; esi < b.k; esi++) if (at[esi] === 1) placed.push(esi);
        for (let ref = 0; ref < this.keptSbn.length; ref++) {
          if (this.keptSbn[ref] !== b.sbn) continue;
          keptEsis.push(this.keptEsi[ref] as number);
          keptRefs.push(ref);
        }
      }
      return { done, placed, keptEsis, keptRefs };
    });
    return { blocks, corrupt: 0 };
  }

  private span(sbn: number): StoreLayout['blocks'][number] {
    const b = this.layout?.blocks[sbn];
    if (!b) throw new StorageError(`no block ${sbn} in the memory store`, 'ERR_STORAGE');
    return b;
  }

  writeSource(sbn: number, esi: number, bytes: Uint8Array): void {
    const b = this.span(sbn);
    this.data.set(bytes, b.offset + esi * (this.layout as StoreLayout).symbolSize);
    (this.placed[sbn] as Uint8Array)[esi] = 1;
  }

  keepSymbol(sbn: number, esi: number, symbol: Uint8Array): number {
    const T = (this.layout as StoreLayout).symbolSize;
    if (symbol.length !== T) throw new StorageError('symbol of the wrong size', 'ERR_STORAGE');
    const ref = this.keptEsi.length;
    const slot = ref % CHUNK_SYMBOLS;
    if (slot === 0) this.chunks.push(new Uint8Array(CHUNK_SYMBOLS * T));
    (this.chunks[this.chunks.length - 1] as Uint8Array).set(symbol, slot * T);
    this.keptSbn.push(sbn);
    this.keptEsi.push(esi);
    return ref;
  }

  readSymbol(ref: number, sbn: number, esi: number): Uint8Array | undefined {
    if (this.keptSbn[ref] !== sbn || this.keptEsi[ref] !== esi) return undefined;
    const T = (this.layout as StoreLayout).symbolSize;
    const at = (ref % CHUNK_SYMBOLS) * T;
    return (this.chunks[Math.floor(ref / CHUNK_SYMBOLS)] as Uint8Array).subarray(at, at + T);
  }

  readData(offset: number, out: Uint8Array): Uint8Array {
    const end = Math.min(this.data.length, offset + out.length);
    if (offset < end) out.set(this.data.subarray(offset, end));
    out.fill(0, Math.max(0, end - offset));
    return out;
  }

  writeUnits(sbn: number, first: number, bytes: Uint8Array): void {
    const b = this.span(sbn);
    const T = (this.layout as StoreLayout).symbolSize;
    this.data.set(bytes, b.offset + first * T);
    (this.placed[sbn] as Uint8Array).fill(1, first, first + Math.ceil(bytes.length / T));
  }

  resetBlock(sbn: number): void {
    (this.placed[sbn] as Uint8Array).fill(0);
  }

  blockDone(sbn: number): void {
    this.span(sbn);
    this.done[sbn] = 1;
  }

  commit(): void {
    const data = this.data;
    this.clear();
    this.delivered = data;
  }

  discard(): void {
    this.clear();
  }

  private clear(): void {
    this.description = undefined;
    this.layout = undefined;
    this.data = new Uint8Array(0);
    this.placed = [];
    this.done = new Uint8Array(0);
    this.chunks = [];
    this.keptSbn = [];
    this.keptEsi = [];
    this.delivered = undefined;
  }

  close(): void {}

  abandon(): void {}
}
