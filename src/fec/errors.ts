import { FecError } from '../errors.js';

/** Stable codes of the FEC layer (all thrown as FecError). */
export const FEC_CODES = {
  oti: 'ERR_FEC_OTI',
  esi: 'ERR_FEC_ESI',
  sbn: 'ERR_FEC_SBN',
  symbolSize: 'ERR_FEC_SYMBOL_SIZE',
  blockSize: 'ERR_FEC_BLOCK_SIZE',
  payloadId: 'ERR_FEC_PAYLOAD_ID',
  argument: 'ERR_FEC_ARGUMENT',
  closed: 'ERR_FEC_CLOSED',
} as const;

export function fecError(code: keyof typeof FEC_CODES, message: string): FecError {
  return new FecError(message, FEC_CODES[code]);
}
