// Glue between the fountain transfer's file sender / receiver and the security layer, used by the
// CLI (`iotupd send --key ...`, `iotupd recv --trust ...`). No sockets here.
import { createHash } from 'node:crypto';
import { closeSync, openSync, readSync } from 'node:fs';
import { encodeOti, type Oti } from '../fec/index.js';
import { deriveObjectId } from '../transfer/object.js';
import { HashAlgorithm } from '../wire/fountain.js';
import { SecurityError, StorageError, UsageError } from '../errors.js';
import { BlockHasher, parseOti } from './blocks.js';
import { equalBytes } from './bytes.js';
import { groupKeyIdOf, loadGroupKey, loadPublicKey, type SigningKey } from './keys.js';
import { signManifest, type CipherName, type ManifestFields } from './manifest.js';
import { DeviceState } from './rollback.js';
import { ReceiveGuard, type ReceiveGuardOptions } from './guard.js';
import { TrustStore } from './trust.js';

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
}

/**
 * Hash a file once, streaming: the whole-object SHA-256 and one commitment per source block, then
 * sign the manifest for the object the sender announces (same object id, OTI and size).
 */
export function signFileManifest(path: string, sender: { objectId: Uint8Array; oti: Oti }, key: SigningKey, r: ReleaseOptions): Uint8Array {
  const otiBytes = encodeOti(sender.oti);
  const blocks = new BlockHasher(parseOti(otiBytes));
  const whole = createHash('sha256');
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (err) {
    throw new StorageError(`cannot read ${path}: ${(err as Error).message}`, 'ERR_STORAGE_READ', { cause: err });
  }
  const buf = new Uint8Array(1 << 20);
  let size = 0;
  try {
    for (;;) {
      const n = readSync(fd, buf, 0, buf.length, size);
      if (n === 0) break;
      const chunk = buf.subarray(0, n);
      whole.update(chunk);
      blocks.update(chunk);
      size += n;
    }
  } finally {
    closeSync(fd);
  }
  const objectHash = new Uint8Array(whole.digest());
  if (size !== sender.oti.transferLength) throw new StorageError(`${path} changed size while being signed`, 'ERR_STORAGE_READ');
  // The object id the transfer derives must be the one this hash gives (the sender hashed SHA-256).
  if (!equalBytes(deriveObjectId(otiBytes, HashAlgorithm.SHA256, objectHash), sender.objectId)) {
    throw new UsageError('signed transfers need --hash sha256 (the manifest binds the SHA-256 of the object)');
  }
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
    blockHashes: blocks.digest(),
  };
  if (r.groupKey && r.cipher) fields.encryption = { cipher: r.cipher, groupKeyId: groupKeyIdOf(r.groupKey) };
  if (r.digests) fields.symbolDigests = true;
  if (r.rolloutBasisPoints !== undefined) fields.rolloutBasisPoints = r.rolloutBasisPoints;
  return signManifest(fields, key);
}

export interface DeviceSetup {
  guard: ReceiveGuard;
  state: DeviceState;
}

/** Build the receive guard of a device from files: pinned keys, group key, state directory. */
export function deviceGuard(opts: {
  trustFiles: string[];
  groupKeyFile?: string;
  stateDir: string;
  product: string;
  cipher?: Exclude<ReceiveGuardOptions['cipher'], undefined>;
  requireEncryption?: boolean;
  requireDigests?: boolean;
  maxSequenceJump?: bigint;
  deviceId?: Uint8Array;
}): DeviceSetup {
  if (opts.trustFiles.length === 0) throw new UsageError('at least one --trust KEY.pub is required');
  const trust = new TrustStore(opts.trustFiles.map((f) => loadPublicKey(f)));
  const state = DeviceState.open(opts.stateDir, opts.product);
  const g: ReceiveGuardOptions = {
    trust,
    policy: state.policy(opts.maxSequenceJump !== undefined ? { maxSequenceJump: opts.maxSequenceJump } : {}),
  };
  if (opts.groupKeyFile !== undefined) g.groupKey = loadGroupKey(opts.groupKeyFile);
  if (opts.cipher) g.cipher = opts.cipher;
  if (opts.requireEncryption) g.requireEncryption = true;
  if (opts.requireDigests) g.requireDigests = true;
  if (opts.deviceId) g.deviceId = opts.deviceId;
  if (g.requireEncryption && !g.groupKey) throw new SecurityError('--encrypt needs --group-key', 'ERR_KEY');
  return { guard: new ReceiveGuard(g), state };
}
