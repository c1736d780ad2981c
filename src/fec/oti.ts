// FEC Object Transmission Information of RFC 6330 section 3.3 and its derivation (section 4.3).
import { fecError } from './errors.js';
import { MAX_K, blockParams } from './rand.js';
import { SYSTEMATIC } from './rfc6330-data.js';

export interface Oti {
  /** F: object size in bytes, 1..946270874880 (40-bit field). */
  transferLength: number;
  /** T: symbol size in bytes, a multiple of Al, 1..65535. */
  symbolSize: number;
  /** Z: number of source blocks, 1..255 (8-bit field). */
  sourceBlocks: number;
  /** N: number of sub-blocks per source block, 1..T/Al. */
  subBlocks: number;
  /** Al: symbol alignment in bytes, 1..255. */
  alignment: number;
}

/** Throws FecError(ERR_FEC_OTI) unless the OTI describes a codable object. */
export function validateOti(oti: Oti): void {
  const { transferLength: f, symbolSize: t, sourceBlocks: z, subBlocks: n, alignment: al } = oti;
  const bad = (why: string): never => {
    throw fecError('oti', `impossible OTI (F=${f}, T=${t}, Z=${z}, N=${n}, Al=${al}): ${why}`);
  };
  if (!Number.isInteger(al) || al < 1 || al > 255) bad('Al must be 1..255');
  if (!Number.isInteger(t) || t < 1 || t > 65535 || t % al !== 0) bad('T must be a multiple of Al in 1..65535');
  if (!Number.isSafeInteger(f) || f < 1 || f > 2 ** 40 - 1) bad('F must be 1..2^40-1');
  if (!Number.isInteger(z) || z < 1 || z > 255) bad('Z must be 1..255');
  if (!Number.isInteger(n) || n < 1 || n > 65535 || n > t / al) bad('N must be 1..T/Al');
  const kt = Math.ceil(f / t);
  if (z > kt) bad('more source blocks than source symbols');
  if (Math.ceil(kt / z) > MAX_K) bad(`a source block would exceed ${MAX_K} symbols`);
}

/*
 * 0                   1                   2                   3
 * 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |                      Transfer Length (F)                      |
 * +               +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |               |    Reserved   |           Symbol Size (T)     |
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |       Z       |              N                |       Al      |
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 */
export const OTI_LENGTH = 12;

export function encodeOti(oti: Oti, out: Uint8Array = new Uint8Array(OTI_LENGTH), offset = 0): Uint8Array {
  validateOti(oti);
  if (offset < 0 || offset + OTI_LENGTH > out.length) throw fecError('argument', 'OTI does not fit in the output buffer');
  const dv = new DataView(out.buffer, out.byteOffset + offset, OTI_LENGTH);
  const f = oti.transferLength;
  dv.setUint8(0, Math.floor(f / 2 ** 32));
  dv.setUint32(1, f >>> 0);
  dv.setUint8(5, 0);
  dv.setUint16(6, oti.symbolSize);
  dv.setUint8(8, oti.sourceBlocks);
  dv.setUint16(9, oti.subBlocks);
  dv.setUint8(11, oti.alignment);
  return out;
}

/** Decodes 12 OTI bytes; throws FecError on truncated input or impossible values. */
export function decodeOti(bytes: Uint8Array, offset = 0): Oti {
  if (!Number.isInteger(offset) || offset < 0 || offset + OTI_LENGTH > bytes.length) throw fecError('oti', 'truncated OTI (12 bytes needed)');
  const dv = new DataView(bytes.buffer, bytes.byteOffset + offset, OTI_LENGTH);
  const oti: Oti = {
    transferLength: dv.getUint8(0) * 2 ** 32 + dv.getUint32(1),
    symbolSize: dv.getUint16(6),
    sourceBlocks: dv.getUint8(8),
    subBlocks: dv.getUint16(9),
    alignment: dv.getUint8(11),
  };
  validateOti(oti);
  return oti;
}

/** K'max of 4.3: the largest K' in Table 2 that is <= limit (0 if none). */
function kPrimeAtMost(limit: number): number {
  let best = 0;
  for (let i = 0; i < SYSTEMATIC.length; i += 5) {
    const kp = SYSTEMATIC[i]!;
    if (kp <= limit) best = kp;
    else break;
  }
  return best;
}

export interface OtiOptions {
  /** Upper bound on K per source block (default 8192, at most 56403). */
  maxBlockSymbols?: number;
  /** Al (default 4 as recommended by RFC 6330 4.3 for most platforms, reduced to fit T). */
  alignment?: number;
  /** N, if the caller wants sub-blocking; otherwise derived from maxSubBlockBytes. */
  subBlocks?: number;
  /** WS of 4.3: maximum size of a sub-block in bytes that a receiver holds in memory. */
  maxSubBlockBytes?: number;
}

/**
 * Chooses Z, N and Al for an object (RFC 6330 4.3 with WS = maxSubBlockBytes, SS = 1, and
 * KL(n) additionally capped by maxBlockSymbols). Throws FecError if no OTI fits.
 */
export function otiFor(transferLength: number, symbolSize: number, opts: OtiOptions = {}): Oti {
  const al = opts.alignment ?? (symbolSize % 4 === 0 ? 4 : symbolSize % 2 === 0 ? 2 : 1);
  if (!Number.isInteger(al) || al < 1 || al > 255) throw fecError('oti', `alignment ${al} outside 1..255`);
  if (!Number.isInteger(symbolSize) || symbolSize < al || symbolSize > 65535 || symbolSize % al !== 0)
    throw fecError('oti', `symbol size ${symbolSize} must be a multiple of Al=${al} in 1..65535`);
  if (!Number.isSafeInteger(transferLength) || transferLength < 1) throw fecError('oti', `transfer length ${transferLength} must be >= 1`);
  const maxK = Math.min(MAX_K, Math.floor(opts.maxBlockSymbols ?? 8192));
  if (!(maxK >= 1)) throw fecError('oti', 'maxBlockSymbols must be >= 1');
  const kt = Math.ceil(transferLength / symbolSize);
  const ws = opts.maxSubBlockBytes ?? Number.MAX_SAFE_INTEGER;
  const nMax = symbolSize / al;
  const kl = (n: number): number => Math.min(maxK, kPrimeAtMost(ws / (al * Math.ceil(symbolSize / (al * n)))));
  let z: number;
  let n: number;
  if (opts.subBlocks !== undefined) {
    n = opts.subBlocks;
    const k = kl(n);
    if (k < 1) throw fecError('oti', `no block size fits WS=${ws} with N=${n}`);
    z = Math.ceil(kt / Math.min(k, maxK));
  } else {
    const kMax = kl(nMax);
    if (kMax < 1) throw fecError('oti', `no block size fits WS=${ws}`);
    z = Math.ceil(kt / kMax);
    n = 1;
    while (n < nMax && Math.ceil(kt / z) > kl(n)) n++;
  }
  // K' of the largest block must exist in Table 2 (blockParams throws otherwise).
  blockParams(Math.ceil(kt / z));
  const oti: Oti = { transferLength, symbolSize, sourceBlocks: z, subBlocks: n, alignment: al };
  validateOti(oti);
  return oti;
}
