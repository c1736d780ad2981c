/**
 * Where a FountainReceiver keeps the object it assembles (docs/protocol.md "Receiver", "Spool").
 * The receiver core decides what to keep, read and write; a store only holds bytes, in one of
 * two forms:
 *
 * - the object's bytes at their place (source symbols on arrival, decoded ones after a decode),
 *   addressed by byte offset in the object; for N = 1 source symbol ESI of block SBN is the
 *   block's unit ESI, bytes [ESI*T, min(ESI*T+T, length)) of the block (RFC 6330 4.4.1.2);
 * - kept symbols (repair symbols, and every symbol of blocks with sub-blocks), T bytes each,
 *   named by a handle the store returns.
 *
 * FileStore (the on-disk spool, resumable after a crash) and MemoryStore implement it. Stores
 * report failures as StorageError; the receiver then stops.
 */

/** One source block of the object (RFC 6330 4.4.1.2 partition). */
export interface BlockSpan {
  sbn: number;
  /** Byte offset of the block in the object. */
  offset: number;
  /** Bytes of the block (the last block may end in a short symbol). */
  length: number;
  k: number;
}

/** The object a store is opened for. */
export interface StoreLayout {
  objectId: Uint8Array;
  /** Bytes of the object. */
  size: number;
  /** T. */
  symbolSize: number;
  blocks: readonly BlockSpan[];
}

/** What a store still holds of one block, as found by `open` when resuming. */
export interface StoredBlock {
  /** The block is complete at its place (and checked, where the store can check). */
  done: boolean;
  /** Source symbols (N = 1) at their place, checked: ESIs in ascending order. */
  placed: number[];
  /** Kept symbols: their ESIs and, in the same order, their handles for readSymbol. */
  keptEsis: number[];
  keptRefs: number[];
}

export interface StoreResume {
  /** Indexed by SBN; blocks of which nothing is held have empty lists. */
  blocks: StoredBlock[];
  /** Records that failed their check or did not fit the object (skipped). */
  corrupt: number;
}

export interface ReceiverStore {
  /** The description datagram of an object this store holds from an earlier run, if any. */
  saved(): Uint8Array | undefined;
  /**
   * Start keeping the object `description` defines (the store keeps the description for
   * `saved`). With `resume`, the object is the saved one: the store reports what it still holds.
   */
  open(description: Uint8Array, layout: StoreLayout, resume: boolean): StoreResume | undefined;
  /** Source symbol `esi` (N = 1) of block `sbn`: its real bytes (short at a block's end) go to their place. */
  writeSource(sbn: number, esi: number, bytes: Uint8Array): void;
  /** Keep a symbol (T bytes); returns its handle. */
  keepSymbol(sbn: number, esi: number, symbol: Uint8Array): number;
  /**
   * A kept symbol's T bytes, or undefined when they did not survive (a failed check). The bytes
   * may live in a buffer the next call overwrites: copy them.
   */
  readSymbol(ref: number, sbn: number, esi: number): Uint8Array | undefined;
  /** Fills `out` with the object's bytes from `offset` (zeros where nothing was written); returns `out`. */
  readData(offset: number, out: Uint8Array): Uint8Array;
  /** Decoded units `first`.. of block `sbn` (`bytes` holds them back to back) go to their place. */
  writeUnits(sbn: number, first: number, bytes: Uint8Array): void;
  /** Forget what block `sbn` has at its place: its units will all be written again (a rejected block). */
  resetBlock(sbn: number): void;
  /** Block `sbn` is complete at its place. */
  blockDone(sbn: number): void;
  /** The object is complete and verified: make it durable and deliver it. */
  commit(): void;
  /** Forget the object and everything kept for it (an unusable saved object, a hash mismatch). */
  discard(): void;
  /** Write out what is buffered and release resources; what is kept stays for a later resume. */
  close(): void;
  /** Release resources without writing out buffers: what a crash leaves (tests), or after a failed write. */
  abandon(): void;
}
