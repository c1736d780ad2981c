// iotupd/fec: RaptorQ (RFC 6330) forward error correction.
export type { Oti, OtiOptions } from './oti.js';
export { otiFor, encodeOti, decodeOti, validateOti, OTI_LENGTH } from './oti.js';
export type { SourceBlock } from './partition.js';
export { blockPartition, subSymbolSizes, MAX_TRANSFER_LENGTH } from './partition.js';
export type { PayloadId } from './payload-id.js';
export { encodePayloadId, decodePayloadId, PAYLOAD_ID_LENGTH, MAX_ESI } from './payload-id.js';
export { BlockEncoder, EncoderBuild, clearPlanCache, encoderPlan, adoptEncoderPlan, hasEncoderPlan } from './encoder.js';
export type { RepairEncoder } from './encoder.js';
export { BlockDecoder } from './decoder.js';
export { ObjectEncoder, ObjectDecoder } from './object.js';
export { blockParams, MAX_K } from './rand.js';
export type { BlockParams } from './rand.js';
export { FEC_CODES } from './errors.js';
export { setKernel, kernel } from './arena.js';
export type { KernelKind } from './arena.js';
