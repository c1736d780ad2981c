// iotupd/crypto: keys, certificates, signed manifests, anti-rollback state, per-packet
// authentication, and the guard that puts them in front of the fountain transfer.
// Scheme and limits: docs/security.md.
export { toHex, fromHex, equalBytes, U64_MAX } from './bytes.js';
export {
  CERT_PEM_LABEL,
  GROUP_KEY_LENGTH,
  KEY_ID_LENGTH,
  PUBLIC_KEY_LENGTH,
  SIGNATURE_LENGTH,
  ed25519Sign,
  ed25519Verify,
  formatGroupKeyFile,
  formatPrivateKeyFile,
  formatPublicKeyFile,
  generateGroupKey,
  generateSigningKey,
  groupKeyIdOf,
  keyIdOf,
  loadGroupKey,
  loadPublicKey,
  loadSigningKey,
  parseGroupKeyFile,
  parsePrivateKeyFile,
  parsePublicKeyFile,
  privateKeyFromSeed,
  publicInfo,
  publicKeyObject,
  rawPublicKey,
  saveGroupKey,
  saveKeyPair,
  signingKeyFrom,
  writeNewFile,
  type PublicKeyInfo,
  type SigningKey,
} from './keys.js';
export {
  CERT_VERSION,
  MAX_NAME,
  MAX_PRODUCTS,
  certIssuer,
  decodeCertificateUnverified,
  issueDelegation,
  issueRootRotation,
  verifyCertificate,
  type CertKind,
  type Certificate,
  type Delegation,
  type DelegationOptions,
  type RootRotation,
} from './certs.js';
export { MAX_CHAIN, TrustStore, type ChainResult, type TrustAnchor } from './trust.js';
export { blockHash, blockHashes, BlockHasher, blockRanges, checkBlock, parseOti as parseOtiFields, BLOCK_HASH_LENGTH } from './blocks.js';
export {
  MANIFEST_VERSION,
  MAX_MANIFEST,
  MAX_MANIFEST_BODY,
  MAX_POLICY_LIST,
  checkDescription,
  decodeManifestBody,
  encodeManifestBody,
  inRollout,
  inspectManifest,
  rolloutPosition,
  signManifest,
  verifyManifest,
  type CipherName,
  type Manifest,
  type ManifestFields,
  type RolloutWave,
  type VerifyPolicy,
} from './manifest.js';
export { DeviceState, writeAtomic, type DeviceStateData } from './rollback.js';
export { NONCE_LENGTH, PacketAuth, TAG_LENGTH, deriveObjectKey, type AuthSuite, type MacSuite, type PacketAuthOptions } from './packet-auth.js';
export { DIGEST_LENGTH, DigestSigner, DigestVerifier, MAX_BATCH, digestKey, type BatchResult, type DigestVerifierStats } from './digests.js';
export { FRAGMENT_HEADER_LENGTH, ManifestAssembler, fragmentManifest } from './fragments.js';
export {
  ReceiveGuard,
  SecureSender,
  fountainSealer,
  groupSealer,
  type DropReason,
  type GuardResult,
  type GuardStats,
  type ReceiveGuardOptions,
  type SecureSenderOptions,
  type SecureStep,
} from './guard.js';
export { blockCommitments, signFileManifest, type ReleaseOptions } from './secure-transfer.js';
