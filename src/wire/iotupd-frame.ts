/**
 * The original iotupd data frame (librestack/iotupd `iot_frame_t`, newest version), sent raw in
 * one UDP datagram with no Librecast header. All integers are big-endian; the struct is packed.
 *
 *   0                   1                   2                   3
 *   0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 *  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *  |          seq (u16)            |                               |
 *  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+                               +
 *  |              size of the whole file (u64, bytes)              |
 *  +                               +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *  |                               |                               |
 *  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+                               +
 *  |              offset of this chunk (u64, bytes)                |
 *  +                               +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *  |                               |        len (u16)              |
 *  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *  |                                                               |
 *  +        hash: BLAKE3 of the whole file (32 bytes, offset 20)   +
 *  |                                                               |
 *  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *  |                                                               |
 *  +        data (1194 bytes, offset 52; only `len` are real,      +
 *  |        the rest is padding with no meaning)                   |
 *  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *                         total: 1246 bytes
 *
 * Validation decisions (docs/carousel.md, "Frame"):
 * - The original sender walks the file in steps of 1194 (`for (i = 0; i <= size; i += MTU_FIXED)`),
 *   so `offset` must be a multiple of 1194 and `len` must be exactly min(1194, size - offset):
 *   a receiver tracks whole chunks, so a partial chunk would be a lie about what is present.
 * - That loop also sends one empty frame at `offset == size, len == 0` when size is a multiple of
 *   1194 (and for an empty file). It is valid here: it carries size and hash but no data.
 * - Padding bytes are not checked: the original leaves the previous chunk's bytes there.
 * - size is capped at MAX_FILE_SIZE (1 TiB) so a hostile frame cannot make a receiver allocate a
 *   huge chunk bitmap or overflow Number arithmetic.
 */
import { DecodeError } from '../errors.js';

export const FRAME_SIZE = 1246;
export const HEADER_SIZE = 52;
export const CHUNK_SIZE = 1194;
export const HASH_SIZE = 32;
/** 2^40 bytes: 920 million chunks, a 115 MB bitmap at most. */
export const MAX_FILE_SIZE = 2 ** 40;

export interface IotupdFrame {
  /** Packet sequence number, 0..65535, wraps. */
  seq: number;
  /** Size of the whole file in bytes. */
  size: number;
  /** Byte offset of this chunk: a multiple of CHUNK_SIZE. */
  offset: number;
  /** BLAKE3 of the whole file, 32 bytes. */
  hash: Uint8Array;
  /** The chunk's real bytes (its length is the frame's `len` field). */
  data: Uint8Array;
}

/** Why a datagram is not a valid frame; receivers count drops by this. */
export type FrameFault = 'short' | 'length' | 'offset' | 'size';

export class FrameDecodeError extends DecodeError {
  readonly fault: FrameFault;
  constructor(fault: FrameFault, message: string) {
    super(message, 'ERR_DECODE_IOTUPD_FRAME');
    this.fault = fault;
  }
}

/** Real length of the chunk at `offset` in a file of `size` bytes (0 for the empty tail frame). */
export function chunkLength(size: number, offset: number): number {
  return Math.max(0, Math.min(CHUNK_SIZE, size - offset));
}

/** Number of data-carrying chunks of a file. */
export function chunkCount(size: number): number {
  return Math.ceil(size / CHUNK_SIZE);
}

export function encodingLength(_frame?: IotupdFrame): number {
  return FRAME_SIZE;
}

/** Checks the header fields; throws FrameDecodeError. Shared by encode (caller bugs) and decode. */
function check(size: number, offset: number, len: number): void {
  if (!Number.isSafeInteger(size) || size < 0 || size > MAX_FILE_SIZE) {
    throw new FrameDecodeError('size', `iotupd frame: file size ${size} is over the ${MAX_FILE_SIZE}-byte cap`);
  }
  if (len > CHUNK_SIZE) throw new FrameDecodeError('length', `iotupd frame: len ${len} > ${CHUNK_SIZE}`);
  if (!Number.isSafeInteger(offset) || offset < 0 || offset % CHUNK_SIZE !== 0) {
    throw new FrameDecodeError('offset', `iotupd frame: offset ${offset} is not a multiple of ${CHUNK_SIZE}`);
  }
  if (offset > size || offset + len > size) {
    throw new FrameDecodeError('offset', `iotupd frame: chunk ${offset}+${len} lies outside a ${size}-byte file`);
  }
  if (len !== chunkLength(size, offset)) {
    throw new FrameDecodeError('length', `iotupd frame: len ${len} at offset ${offset} of a ${size}-byte file, expected ${chunkLength(size, offset)}`);
  }
}

/**
 * Writes the frame into `buf` at `offset` (a fresh 1246-byte array if omitted); padding is zeroed.
 * Throws FrameDecodeError (fault as in decode) for a frame that decode would refuse.
 */
export function encode(frame: IotupdFrame, buf?: Uint8Array, offset = 0): Uint8Array {
  const out = buf ?? new Uint8Array(FRAME_SIZE);
  if (!Number.isInteger(offset) || offset < 0 || out.length - offset < FRAME_SIZE) {
    throw new RangeError(`iotupd frame: need ${FRAME_SIZE} bytes at offset ${offset}, buffer has ${out.length}`);
  }
  const { seq, size, hash, data } = frame;
  if (!Number.isInteger(seq) || seq < 0 || seq > 0xffff) throw new RangeError(`iotupd frame: seq ${seq} is not a u16`);
  if (hash.length !== HASH_SIZE) throw new RangeError(`iotupd frame: hash must be ${HASH_SIZE} bytes, got ${hash.length}`);
  check(size, frame.offset, data.length);
  const view = new DataView(out.buffer, out.byteOffset + offset, FRAME_SIZE);
  view.setUint16(0, seq);
  view.setBigUint64(2, BigInt(size));
  view.setBigUint64(10, BigInt(frame.offset));
  view.setUint16(18, data.length);
  out.set(hash, offset + 20);
  out.set(data, offset + HEADER_SIZE);
  out.fill(0, offset + HEADER_SIZE + data.length, offset + FRAME_SIZE);
  return out.subarray(offset, offset + FRAME_SIZE);
}

/**
 * Reads one frame from `buf` at `offset`. `hash` and `data` are views into `buf` (no copy).
 * Bytes after the 1246th are not looked at: a receiver that wants exact datagrams checks length.
 */
export function decode(buf: Uint8Array, offset = 0): IotupdFrame {
  if (!Number.isInteger(offset) || offset < 0 || buf.length - offset < FRAME_SIZE) {
    throw new FrameDecodeError('short', `iotupd frame: ${Math.max(0, buf.length - offset)} bytes, need ${FRAME_SIZE}`);
  }
  const view = new DataView(buf.buffer, buf.byteOffset + offset, FRAME_SIZE);
  const seq = view.getUint16(0);
  const size64 = view.getBigUint64(2);
  const off64 = view.getBigUint64(10);
  const len = view.getUint16(18);
  if (size64 > BigInt(MAX_FILE_SIZE)) {
    throw new FrameDecodeError('size', `iotupd frame: file size ${size64} is over the ${MAX_FILE_SIZE}-byte cap`);
  }
  if (off64 > size64) throw new FrameDecodeError('offset', `iotupd frame: offset ${off64} beyond file size ${size64}`);
  const size = Number(size64);
  const chunkOffset = Number(off64);
  check(size, chunkOffset, len);
  return {
    seq,
    size,
    offset: chunkOffset,
    hash: buf.subarray(offset + 20, offset + 20 + HASH_SIZE),
    data: buf.subarray(offset + HEADER_SIZE, offset + HEADER_SIZE + len),
  };
}
