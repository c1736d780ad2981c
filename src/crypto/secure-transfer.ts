// A sender's side of a signed release: the per-block commitments computed in the file sender's
// hashing pass, and the manifest signed over them (used by src/session/send-security.ts and
// `iotupd manifest sign`). No sockets here.
import { encodeOti, type Oti } from '../fec/index.js';
import { HashAlgorithm } from '../wire/fountain.js';
import { UsageError } from '../errors.js';
import { BlockHasher, parseOti } from './blocks.js';
import { groupKeyIdOf, type SigningKey } from './keys.js';
import { signManifest, type CipherName, type ManifestFields } from './manifest.js';

export interface ReleaseOptions {
  product: string;
  sequence: bigint;
  version: string;
  /** Unix seconds. */
  created: number;
  expires: number;
  groupKey?: Uint8Array;
  cipher?: CipherName;
  digests?: boolean;
  rolloutBasisPoints?: number;
  /** Release policy the agent honours (src/agent/rollout.ts; manifest flag bits 3-7). */
  policy?: Pick<ManifestFields, 'deviceClasses' | 'hardware' | 'rolloutWaves' | 'activation' | 'switchAt'>;
}

/**
 * The per-block commitments of a file, computed in the sender's one hashing pass: pass `observe`
 * as createFileSender's `observe` option, then `blockHashes()` once the sender exists.
 */
export function blockCommitments(): { observe: (oti: Oti) => (chunk: Uint8Array) => void; blockHashes(): Uint8Array[] } {
  let hasher: BlockHasher | undefined;
  return {
    observe(oti) {
      const h = new BlockHasher(parseOti(encodeOti(oti)));
      hasher = h;
      return (chunk) => h.update(chunk);
    },
    blockHashes() {
      if (!hasher) throw new UsageError('the file was not hashed with the block commitments (createFileSender observe)');
      return hasher.digest();
    },
  };
}

/**
 * Sign the manifest for the object the sender announces (same object id, OTI, size and SHA-256),
 * with the block commitments taken from the same pass over the file (blockCommitments).
 */
export function signFileManifest(sender: { objectId: Uint8Array; oti: Oti; hash: Uint8Array; hashAlgorithm: number }, blockHashes: Uint8Array[], key: SigningKey, r: ReleaseOptions): Uint8Array {
  // The manifest binds the SHA-256 of the object, and the object id derives from the sender's hash.
  if (sender.hashAlgorithm !== HashAlgorithm.SHA256) {
    throw new UsageError('signed transfers need --hash sha256 (the manifest binds the SHA-256 of the object)');
  }
  const otiBytes = encodeOti(sender.oti);
  if (blockHashes.length !== sender.oti.sourceBlocks) throw new UsageError(`${blockHashes.length} block commitments for ${sender.oti.sourceBlocks} source blocks`);
  const objectHash = sender.hash;
  const size = sender.oti.transferLength;
  const fields: ManifestFields = {
    product: r.product,
    sequence: r.sequence,
    version: r.version,
    created: r.created,
    expires: r.expires,
    objectId: sender.objectId,
    objectHash,
    size,
    oti: otiBytes,
    blockHashes,
  };
  if (r.groupKey && r.cipher) fields.encryption = { cipher: r.cipher, groupKeyId: groupKeyIdOf(r.groupKey) };
  if (r.digests) fields.symbolDigests = true;
  if (r.rolloutBasisPoints !== undefined) fields.rolloutBasisPoints = r.rolloutBasisPoints;
  if (r.policy) {
    const p = r.policy;
    if (p.deviceClasses !== undefined) fields.deviceClasses = p.deviceClasses;
    if (p.hardware !== undefined) fields.hardware = p.hardware;
    if (p.rolloutWaves !== undefined) fields.rolloutWaves = p.rolloutWaves;
    if (p.activation !== undefined) fields.activation = p.activation;
    if (p.switchAt !== undefined) fields.switchAt = p.switchAt;
  }
  return signManifest(fields, key);
}
