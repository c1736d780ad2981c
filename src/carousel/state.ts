/**
 * Resume state kept next to a partial output file (OUT.iotupd-state), so that a restarted
 * receiver asks only for the chunks it lacks. Written atomically (temp file + rename) after
 * the output file's data is synced, so a state never claims a chunk that is not on disk.
 *
 *   offset  size  field
 *   0       8     magic "IOTUPDRS"
 *   8       1     version (1)
 *   9       3     zero
 *   12      8     file size, u64 BE
 *   20      32    BLAKE3 of the whole file (what the frames carry)
 *   52      4     chunk size, u32 BE (1194)
 *   56      4     bitmap length n in bytes, u32 BE (= ceil(chunks / 8))
 *   60      n     chunk bitmap, bit i of byte i>>3 (LSB first) = chunk i present
 *   60+n    32    BLAKE3 of bytes 0 .. 60+n (a torn or corrupted state is refused)
 */
import { blake3 } from '@noble/hashes/blake3.js';
import { DecodeError } from '../errors.js';
import { CHUNK_SIZE, MAX_FILE_SIZE, chunkCount } from '../wire/iotupd-frame.js';

const MAGIC = new TextEncoder().encode('IOTUPDRS');
const VERSION = 1;
const FIXED = 60;

export interface ResumeState {
  size: number;
  hash: Uint8Array;
  /** Chunk bitmap bytes, ceil(chunkCount(size) / 8) of them. */
  present: Uint8Array;
}

export function encodeState(s: ResumeState): Uint8Array {
  const n = Math.ceil(chunkCount(s.size) / 8);
  if (s.present.length !== n) throw new RangeError(`bitmap must be ${n} bytes, got ${s.present.length}`);
  if (s.hash.length !== 32) throw new RangeError('hash must be 32 bytes');
  const out = new Uint8Array(FIXED + n + 32);
  const v = new DataView(out.buffer);
  out.set(MAGIC, 0);
  out[8] = VERSION;
  v.setBigUint64(12, BigInt(s.size));
  out.set(s.hash, 20);
  v.setUint32(52, CHUNK_SIZE);
  v.setUint32(56, n);
  out.set(s.present, FIXED);
  out.set(blake3(out.subarray(0, FIXED + n)), FIXED + n);
  return out;
}

export function decodeState(b: Uint8Array): ResumeState {
  const bad = (why: string): never => {
    throw new DecodeError(`resume state: ${why}`, 'ERR_DECODE_RESUME_STATE');
  };
  if (b.length < FIXED + 32) bad(`${b.length} bytes is too short`);
  for (let i = 0; i < MAGIC.length; i++) if (b[i] !== MAGIC[i]) bad('not an iotupd resume state');
  if (b[8] !== VERSION) bad(`version ${b[8]} is not supported`);
  const v = new DataView(b.buffer, b.byteOffset, b.length);
  const size64 = v.getBigUint64(12);
  if (size64 > BigInt(MAX_FILE_SIZE)) bad(`size ${size64} over the cap`);
  const size = Number(size64);
  if (v.getUint32(52) !== CHUNK_SIZE) bad(`chunk size ${v.getUint32(52)}, expected ${CHUNK_SIZE}`);
  const n = v.getUint32(56);
  if (n !== Math.ceil(chunkCount(size) / 8)) bad(`bitmap length ${n} does not fit a ${size}-byte file`);
  if (b.length !== FIXED + n + 32) bad(`length ${b.length}, expected ${FIXED + n + 32}`);
  const check = blake3(b.subarray(0, FIXED + n));
  const stored = b.subarray(FIXED + n);
  for (let i = 0; i < 32; i++) if (check[i] !== stored[i]) bad('checksum mismatch (torn or corrupted)');
  return { size, hash: b.slice(20, 52), present: b.slice(FIXED, FIXED + n) };
}
