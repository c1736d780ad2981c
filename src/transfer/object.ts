import { createHash } from 'node:crypto';
import { blake3 } from '@noble/hashes/blake3.js';
import { HashAlgorithm, HASH_LENGTH, OBJECT_ID_LENGTH } from '../wire/fountain.js';
import { DecodeError } from '../errors.js';
import { readChunks } from '../fsutil/index.js';

/**
 * Whole-object digest. SHA-256 is the default: node:crypto runs it natively (OpenSSL, SHA-NI on
 * x86 and the ARMv8 crypto extensions on devices) at well over 1 GB/s, where BLAKE3 is only
 * available here as pure JS (@noble/hashes), several times slower for a 1 GiB image; Ed25519
 * manifests and most device boot ROMs also speak SHA-256. BLAKE3 (Librecast's hash) stays
 * selectable through the algorithm byte (docs/decisions/0001-sha256-object-hash.md).
 */
export interface Hasher {
  update(data: Uint8Array): void;
  digest(): Uint8Array;
}

export function createHasher(algorithm: number): Hasher {
  if (algorithm === HashAlgorithm.SHA256) {
    const h = createHash('sha256');
    return {
      update: (d) => void h.update(d),
      digest: () => new Uint8Array(h.digest()),
    };
  }
  if (algorithm === HashAlgorithm.BLAKE3) {
    const h = blake3.create({ dkLen: HASH_LENGTH });
    return {
      update: (d) => void h.update(d),
      digest: () => h.digest(),
    };
  }
  throw new DecodeError(`unknown hash algorithm ${algorithm}`, 'ERR_DECODE_HASH_ALGORITHM');
}

export function hashBytes(algorithm: number, data: Uint8Array): Uint8Array {
  const h = createHasher(algorithm);
  h.update(data);
  return h.digest();
}

/**
 * Hashes the first `length` bytes of a file (all of it by default) streaming, in 1 MiB chunks
 * read ahead (readChunks): bounded memory. `observe` sees the same bytes in order (one read
 * serves several digests).
 */
export async function hashFile(algorithm: number, path: string, length?: number, observe?: (chunk: Uint8Array) => void): Promise<Uint8Array> {
  const h = createHasher(algorithm);
  await readChunks(
    path,
    (chunk) => {
      h.update(chunk);
      observe?.(chunk);
    },
    { length },
  );
  return h.digest();
}

/**
 * Object id: the first 8 bytes of SHA-256("iotupd/fountain/object-id/v1" || OTI || hash alg || hash).
 * Derived, not random, so that several independent senders of the same file with the same
 * parameters produce one object id and their symbols combine at the receiver.
 */
export function deriveObjectId(oti: Uint8Array, hashAlgorithm: number, hash: Uint8Array): Uint8Array {
  const h = createHash('sha256');
  h.update('iotupd/fountain/object-id/v1');
  h.update(oti);
  h.update(Uint8Array.of(hashAlgorithm));
  h.update(hash);
  return new Uint8Array(h.digest()).subarray(0, OBJECT_ID_LENGTH);
}

export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
