import { CHUNK_SIZE, FRAME_SIZE, HASH_SIZE, MAX_FILE_SIZE, chunkCount, chunkLength, encode } from '../wire/iotupd-frame.js';

/** Bytes one frame occupies on the wire: frame + UDP (8) + IPv6 (40). Pacing counts these. */
export const WIRE_BYTES_PER_FRAME = FRAME_SIZE + 8 + 40;

/** Returns the real bytes of the chunk at `offset` (exactly `length` of them). */
export type ChunkReader = (offset: number, length: number) => Uint8Array;

export interface CarouselSenderOptions {
  /** File size in bytes (0..MAX_FILE_SIZE). */
  size: number;
  /** BLAKE3 of the whole file. */
  hash: Uint8Array;
  readChunk: ChunkReader;
  /**
   * Where the first pass starts, in bytes; rounded down to a chunk boundary. Several senders of
   * one file started at different offsets cover the file sooner between them (the talk's idea).
   */
  startOffset?: number;
  /** Full passes over the file; Infinity (the default, like the original) means forever. */
  passes?: number;
  /** First sequence number (0..65535); it increments per frame and wraps. */
  firstSeq?: number;
}

/**
 * I/O-free carousel sender: `next()` returns the next 1246-byte frame to send, or undefined when
 * the requested passes are done. A pass is one frame per chunk, starting at `startOffset` and
 * wrapping round the end of the file. An empty file is one empty frame per pass (the original
 * sends that too); unlike the original, no empty tail frame follows a size that is a multiple
 * of 1194, because it carries no data (receivers accept it either way).
 */
export class CarouselSender {
  readonly size: number;
  readonly hash: Uint8Array;
  readonly framesPerPass: number;
  readonly startChunk: number;
  readonly passes: number;
  #read: ChunkReader;
  #seq: number;
  #sent = 0;

  constructor(opts: CarouselSenderOptions) {
    const { size, hash } = opts;
    if (!Number.isSafeInteger(size) || size < 0 || size > MAX_FILE_SIZE) {
      throw new RangeError(`file size ${size} outside 0..${MAX_FILE_SIZE}`);
    }
    if (hash.length !== HASH_SIZE) throw new RangeError(`hash must be ${HASH_SIZE} bytes`);
    const passes = opts.passes ?? Infinity;
    if (!(passes > 0) || (passes !== Infinity && !Number.isInteger(passes))) throw new RangeError(`passes ${passes}`);
    const start = opts.startOffset ?? 0;
    if (!Number.isSafeInteger(start) || start < 0 || (start >= size && start !== 0)) {
      throw new RangeError(`start offset ${start} outside a ${size}-byte file`);
    }
    const seq = opts.firstSeq ?? 0;
    if (!Number.isInteger(seq) || seq < 0 || seq > 0xffff) throw new RangeError(`first seq ${seq}`);
    this.size = size;
    this.hash = Uint8Array.from(hash);
    this.framesPerPass = Math.max(1, chunkCount(size));
    this.startChunk = Math.floor(start / CHUNK_SIZE);
    this.passes = passes;
    this.#read = opts.readChunk;
    this.#seq = seq;
  }

  /** Frames returned so far. */
  get sent(): number {
    return this.#sent;
  }

  get done(): boolean {
    return this.#sent >= this.passes * this.framesPerPass;
  }

  /** Passes completed so far (fractional). */
  get progress(): number {
    return this.#sent / this.framesPerPass;
  }

  next(): Uint8Array | undefined {
    if (this.done) return undefined;
    const chunk = (this.startChunk + (this.#sent % this.framesPerPass)) % this.framesPerPass;
    const offset = chunk * CHUNK_SIZE;
    const length = chunkLength(this.size, offset);
    const data = length === 0 ? new Uint8Array(0) : this.#read(offset, length);
    if (data.length !== length) {
      throw new RangeError(`chunk reader returned ${data.length} bytes at offset ${offset}, expected ${length}`);
    }
    const frame = encode({ seq: this.#seq, size: this.size, offset, hash: this.hash, data });
    this.#seq = (this.#seq + 1) & 0xffff;
    this.#sent += 1;
    return frame;
  }
}
