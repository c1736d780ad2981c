// FEC Payload ID of RFC 6330 section 3.2: 8-bit SBN then 24-bit ESI, big-endian.
import { fecError } from './errors.js';

export const PAYLOAD_ID_LENGTH = 4;
export const MAX_ESI = 0xffffff;

export interface PayloadId {
  sbn: number;
  esi: number;
}

export function encodePayloadId(sbn: number, esi: number, out: Uint8Array = new Uint8Array(4), offset = 0): Uint8Array {
  if (!Number.isInteger(sbn) || sbn < 0 || sbn > 255) throw fecError('sbn', `SBN ${sbn} outside 0..255`);
  if (!Number.isInteger(esi) || esi < 0 || esi > MAX_ESI) throw fecError('esi', `ESI ${esi} outside 0..2^24-1`);
  if (!Number.isInteger(offset) || offset < 0 || offset + 4 > out.length) throw fecError('payloadId', 'payload ID does not fit in the output buffer');
  out[offset] = sbn;
  out[offset + 1] = esi >>> 16;
  out[offset + 2] = (esi >>> 8) & 0xff;
  out[offset + 3] = esi & 0xff;
  return out;
}

export function decodePayloadId(bytes: Uint8Array, offset = 0): PayloadId {
  if (!Number.isInteger(offset) || offset < 0 || offset + 4 > bytes.length) throw fecError('payloadId', 'truncated FEC payload ID (4 bytes needed)');
  return { sbn: bytes[offset]!, esi: (bytes[offset + 1]! << 16) | (bytes[offset + 2]! << 8) | bytes[offset + 3]! };
}
