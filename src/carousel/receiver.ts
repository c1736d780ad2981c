import { CHUNK_SIZE, FRAME_SIZE, FrameDecodeError, MAX_FILE_SIZE, chunkCount, decode, type FrameFault } from '../wire/iotupd-frame.js';
import { ChunkBitmap } from './bitmap.js';
import { SeqLossEstimator, type LossStats } from './loss.js';

/** What a receiver is fetching: the first valid frame (or a resumed state) decides. */
export interface FileIdentity {
  size: number;
  hash: Uint8Array;
}

/**
 * Why a datagram was dropped:
 * - short / long: not exactly 1246 bytes;
 * - length, offset: impossible `len` or `offset` (see src/wire/iotupd-frame.ts);
 * - too-large: size over the receiver's cap;
 * - size-changed: same hash as the file being fetched, but another size (inconsistent sender);
 * - foreign: another file (another hash) than the one being fetched: the first seen wins.
 */
export type DropReason = 'short' | 'long' | 'length' | 'offset' | 'too-large' | 'size-changed' | 'foreign';
export const DROP_REASONS: readonly DropReason[] = ['short', 'long', 'length', 'offset', 'too-large', 'size-changed', 'foreign'];

export type PushResult =
  /** New chunk: write `data` at `offset`. The chunk is marked present now (see `unwrite`). */
  | { kind: 'write'; chunk: number; offset: number; data: Uint8Array }
  /** A chunk already present (or the file is complete). */
  | { kind: 'duplicate'; chunk: number }
  /** The original's empty tail frame (offset == size, len 0): carries identity only. */
  | { kind: 'empty' }
  | { kind: 'dropped'; reason: DropReason; detail: string };

export interface ReceiverStats {
  /** Datagrams pushed. */
  datagrams: number;
  /** Chunks handed out for writing. */
  written: number;
  duplicate: number;
  empty: number;
  dropped: Record<DropReason, number>;
  /** Whole-file hash checks that failed (each one marks every chunk missing again). */
  hashFailures: number;
  chunks: number;
  chunksTotal: number;
  loss: LossStats;
}

export interface CarouselReceiverOptions {
  /** Pin the file (from a resume state): frames of any other file are 'foreign'. */
  expect?: FileIdentity;
  /** Chunk bitmap from a resume state (requires `expect`). */
  present?: Uint8Array;
  /** Largest file accepted, bytes (default 64 GiB: a bitmap of 7 MB at most). */
  maxSize?: number;
}

export const DEFAULT_MAX_SIZE = 64 * 2 ** 30;

const FAULT_REASON: Record<FrameFault, DropReason> = { short: 'short', length: 'length', offset: 'offset', size: 'too-large' };

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/**
 * I/O-free carousel receiver. Feed it datagrams with `push`; it answers what to do with each.
 * The driver writes chunks, and once `complete` is true, hashes the whole file and calls
 * `verified(ok)`. There are no per-chunk hashes in this format, so a failed whole-file check
 * cannot tell which chunk is wrong: every chunk is marked missing and fetched again.
 */
export class CarouselReceiver {
  readonly maxSize: number;
  #identity: FileIdentity | undefined;
  #bitmap: ChunkBitmap | undefined;
  #loss = new SeqLossEstimator();
  #datagrams = 0;
  #written = 0;
  #duplicate = 0;
  #empty = 0;
  #hashFailures = 0;
  #dropped: Record<DropReason, number> = Object.fromEntries(DROP_REASONS.map((r) => [r, 0])) as Record<DropReason, number>;

  constructor(opts: CarouselReceiverOptions = {}) {
    this.maxSize = opts.maxSize ?? DEFAULT_MAX_SIZE;
    if (!(this.maxSize >= 0 && this.maxSize <= MAX_FILE_SIZE)) throw new RangeError(`maxSize ${this.maxSize}`);
    if (opts.expect) {
      this.#pin(opts.expect, opts.present);
    } else if (opts.present) {
      throw new RangeError('a chunk bitmap needs the file identity it belongs to');
    }
  }

  #pin(id: FileIdentity, present?: Uint8Array): void {
    if (id.hash.length !== 32 || !Number.isSafeInteger(id.size) || id.size < 0 || id.size > this.maxSize) {
      throw new RangeError(`invalid file identity (size ${id.size})`);
    }
    this.#identity = { size: id.size, hash: Uint8Array.from(id.hash) };
    this.#bitmap = new ChunkBitmap(chunkCount(id.size), present);
  }

  get identity(): FileIdentity | undefined {
    return this.#identity;
  }

  /** Chunk bitmap (undefined until the file is known); its `bytes` go into the resume state. */
  get bitmap(): ChunkBitmap | undefined {
    return this.#bitmap;
  }

  get complete(): boolean {
    return this.#bitmap !== undefined && this.#bitmap.full;
  }

  /** `source` identifies the sender (its address) so each sender's seq is tracked apart. */
  push(datagram: Uint8Array, source?: string): PushResult {
    this.#datagrams += 1;
    if (datagram.length > FRAME_SIZE) return this.#drop('long', `${datagram.length}-byte datagram, frames are ${FRAME_SIZE}`);
    let frame;
    try {
      frame = decode(datagram);
    } catch (err) {
      if (err instanceof FrameDecodeError) return this.#drop(FAULT_REASON[err.fault], err.message);
      throw err;
    }
    this.#loss.observe(frame.seq, source);
    if (frame.size > this.maxSize) return this.#drop('too-large', `file of ${frame.size} bytes over the ${this.maxSize}-byte limit`);
    const id = this.#identity;
    if (id === undefined) {
      this.#pin(frame);
    } else if (!equalBytes(id.hash, frame.hash)) {
      return this.#drop('foreign', 'frame of another file (different hash)');
    } else if (id.size !== frame.size) {
      return this.#drop('size-changed', `size ${frame.size} differs from ${id.size} for the same hash`);
    }
    const bitmap = this.#bitmap!;
    if (frame.data.length === 0 && frame.offset === frame.size) {
      this.#empty += 1;
      return { kind: 'empty' };
    }
    const chunk = frame.offset / CHUNK_SIZE;
    if (!bitmap.add(chunk)) {
      this.#duplicate += 1;
      return { kind: 'duplicate', chunk };
    }
    this.#written += 1;
    return { kind: 'write', chunk, offset: frame.offset, data: frame.data };
  }

  /** The driver could not write `chunk` (it stays missing). */
  unwrite(chunk: number): void {
    if (this.#bitmap?.delete(chunk)) this.#written -= 1;
  }

  /** Result of the driver's whole-file hash check once `complete`; false starts over. */
  verified(ok: boolean): void {
    if (ok) return;
    this.#hashFailures += 1;
    this.#bitmap?.clear();
  }

  #drop(reason: DropReason, detail: string): PushResult {
    this.#dropped[reason] += 1;
    return { kind: 'dropped', reason, detail };
  }

  stats(): ReceiverStats {
    return {
      datagrams: this.#datagrams,
      written: this.#written,
      duplicate: this.#duplicate,
      empty: this.#empty,
      dropped: { ...this.#dropped },
      hashFailures: this.#hashFailures,
      chunks: this.#bitmap?.count ?? 0,
      chunksTotal: this.#bitmap?.size ?? 0,
      loss: this.#loss.stats(),
    };
  }
}
