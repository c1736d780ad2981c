// Per-source-block commitments. The signed manifest carries one SHA-256 per RaptorQ source block, so
// a receiver can check each block as soon as it decodes and before it writes it to its final place.
import { createHash } from 'node:crypto';
import { DecodeError } from '../errors.js';
import { ascii, equalBytes, Writer } from './bytes.js';

export const OTI_LENGTH = 12;
export const BLOCK_HASH_LENGTH = 32;

/** RFC 6330 section 3.3.2 (Common FEC OTI) and 3.3.3 (Scheme-Specific). */
export interface Oti {
  F: number;
  T: number;
  Z: number;
  N: number;
  Al: number;
}

/** F (40 bits), reserved (8), T (16), Z (8), N (16), Al (8), all big-endian. */
export function parseOti(oti: Uint8Array): Oti {
  if (oti.length !== OTI_LENGTH) throw new DecodeError(`OTI must be ${OTI_LENGTH} bytes`);
  const v = new DataView(oti.buffer, oti.byteOffset, oti.byteLength);
  const F = v.getUint8(0) * 2 ** 32 + v.getUint32(1);
  const T = v.getUint16(6);
  const Z = v.getUint8(8);
  const N = v.getUint16(9);
  const Al = v.getUint8(11);
  if (T === 0 || Al === 0 || T % Al !== 0 || Z === 0 || N === 0) throw new DecodeError('OTI: impossible T / Z / N / Al');
  if (Math.ceil(F / T) < Z) throw new DecodeError('OTI: more source blocks than source symbols');
  return { F, T, Z, N, Al };
}

/** Byte range of each source block (each at least one byte, since parseOti requires ceil(F/T) >= Z): RFC 6330 section 4.4.1.2, Partition[ceil(F/T), Z]. */
export function blockRanges(oti: Oti): { offset: number; length: number }[] {
  const Kt = Math.ceil(oti.F / oti.T);
  const KL = Math.ceil(Kt / oti.Z);
  const KS = Math.floor(Kt / oti.Z);
  const ZL = Kt - KS * oti.Z;
  const out: { offset: number; length: number }[] = [];
  let offset = 0;
  for (let sbn = 0; sbn < oti.Z; sbn++) {
    const K = sbn < ZL ? KL : KS;
    const length = Math.max(0, Math.min(K * oti.T, oti.F - offset));
    out.push({ offset, length });
    offset += K * oti.T;
  }
  return out;
}

/**
 * SHA-256("iotupd block v1\0" || SBN (u8) || length (u64) || block bytes without padding). The SBN
 * and length bind the block to its position, so blocks cannot be swapped or truncated.
 */
export function blockHash(sbn: number, data: Uint8Array): Uint8Array {
  const prefix = new Writer().fixed(ascii('iotupd block v1\0'), 16).u8(sbn).u64(BigInt(data.length)).finish();
  return new Uint8Array(createHash('sha256').update(prefix).update(data).digest());
}

/** The commitments for a whole object in memory (sender side; large files use blockHashesOfFile). */
export function blockHashes(oti: Oti, object: Uint8Array): Uint8Array[] {
  if (object.length !== oti.F) throw new DecodeError(`object is ${object.length} bytes, OTI says ${oti.F}`);
  return blockRanges(oti).map((r, sbn) => blockHash(sbn, object.subarray(r.offset, r.offset + r.length)));
}

/** Streaming variant for the sender: feeds the object through in order, one block at a time. */
export class BlockHasher {
  private readonly ranges: { offset: number; length: number }[];
  private sbn = 0;
  private pos = 0;
  private hash = createHash('sha256');
  private readonly out: Uint8Array[] = [];

  constructor(private readonly oti: Oti) {
    this.ranges = blockRanges(oti);
    this.startBlock();
  }

  private startBlock(): void {
    const r = this.ranges[this.sbn];
    this.hash = createHash('sha256');
    if (r) this.hash.update(new Writer().fixed(ascii('iotupd block v1\0'), 16).u8(this.sbn).u64(BigInt(r.length)).finish());
  }

  update(chunk: Uint8Array): void {
    let o = 0;
    while (o < chunk.length) {
      const r = this.ranges[this.sbn];
      if (!r) throw new DecodeError(`more than ${this.oti.F} bytes`);
      const take = Math.min(chunk.length - o, r.offset + r.length - this.pos);
      this.hash.update(chunk.subarray(o, o + take));
      o += take;
      this.pos += take;
      if (this.pos === r.offset + r.length) this.finishBlock();
    }
  }

  private finishBlock(): void {
    this.out.push(new Uint8Array(this.hash.digest()));
    this.sbn += 1;
    this.startBlock();
  }

  digest(): Uint8Array[] {
    if (this.out.length !== this.ranges.length) throw new DecodeError(`object shorter than ${this.oti.F} bytes`);
    return this.out;
  }
}

export function checkBlock(commitments: readonly Uint8Array[], sbn: number, data: Uint8Array): boolean {
  const expected = commitments[sbn];
  return expected !== undefined && equalBytes(blockHash(sbn, data), expected);
}
