// iotupd/crypto: keys, certificates, signed manifests, anti-rollback state, per-packet
// authentication, and the guard that puts them in front of the fountain transfer.
// Scheme and limits: docs/security.md.
export { toHex, fromHex, equalBytes, U64_MAX } from './bytes.js';
export * from './keys.js';
export * from './certs.js';
export * from './trust.js';
export { blockHash, blockHashes, BlockHasher, blockRanges, checkBlock, parseOti as parseOtiFields, BLOCK_HASH_LENGTH } from './blocks.js';
export * from './manifest.js';
export * from './rollback.js';
export * from './packet-auth.js';
export * from './digests.js';
export * from './fragments.js';
export * from './guard.js';
export * from './secure-transfer.js';
