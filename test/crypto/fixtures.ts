// Shared fixtures for the crypto tests: deterministic keys (RFC 8032 seeds), a seeded PRNG, and a
// release (object + OTI + block commitments) built the way the sender builds it.
import { createHash } from 'node:crypto';
import { blockHashes, parseOti } from '../../src/crypto/blocks.js';
import { issueDelegation } from '../../src/crypto/certs.js';
import { privateKeyFromSeed, signingKeyFrom, type SigningKey } from '../../src/crypto/keys.js';
import type { ManifestFields } from '../../src/crypto/manifest.js';
import { TrustStore } from '../../src/crypto/trust.js';
import { xorshift32 } from '../support/prng.js';

/** xorshift32: deterministic integers for tests (seed 0 stands for 1). */
export function prng(seed: number): () => number {
  return xorshift32(seed >>> 0 || 1);
}

export function randomBytesSeeded(n: number, seed: number): Uint8Array {
  const r = prng(seed);
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = r() & 0xff;
  return out;
}

export function keyFromSeed(label: string): SigningKey {
  return signingKeyFrom(privateKeyFromSeed(createHash('sha256').update(label).digest()));
}

/** RFC 6330 OTI bytes: F (40 bits), reserved, T, Z, N, Al. */
export function otiBytes(F: number, T: number, Z: number, N = 1, Al = 4): Uint8Array {
  const b = new Uint8Array(12);
  const v = new DataView(b.buffer);
  v.setUint8(0, Math.floor(F / 2 ** 32));
  v.setUint32(1, F >>> 0);
  v.setUint16(6, T);
  v.setUint8(8, Z);
  v.setUint16(9, N);
  v.setUint8(11, Al);
  return b;
}

export const T0 = 1_790_000_000; // 2026-09-21, a fixed "now" for tests
export const DAY = 86400;

export interface Release {
  object: Uint8Array;
  fields: ManifestFields;
}

export function release(sequence: bigint, opts: { size?: number; T?: number; Z?: number; seed?: number; product?: string; created?: number; expires?: number; objectId?: Uint8Array } = {}): Release {
  const size = opts.size ?? 10_000;
  const T = opts.T ?? 256;
  const Z = opts.Z ?? 3;
  const object = randomBytesSeeded(size, opts.seed ?? Number(sequence) * 7919);
  const oti = otiBytes(size, T, Z);
  const hash = new Uint8Array(createHash('sha256').update(object).digest());
  return {
    object,
    fields: {
      product: opts.product ?? 'sensor-v2',
      sequence,
      version: `1.${sequence}.0`,
      created: opts.created ?? T0 - DAY,
      expires: opts.expires ?? T0 + 30 * DAY,
      objectId: opts.objectId ?? hash.slice(0, 8),
      objectHash: hash,
      size,
      oti,
      blockHashes: blockHashes(parseOti(oti), object),
    },
  };
}

/** An offline root, a signing key delegated by it, and a device trust store pinning the root. */
export function hierarchy(opts: { products?: string[]; maxSequence?: bigint; notAfter?: number } = {}) {
  const root = keyFromSeed('root');
  const signer = keyFromSeed('signer');
  const delegation = issueDelegation(root, signer.publicKey, {
    products: opts.products ?? ['sensor-v2'],
    notBefore: T0 - 10 * DAY,
    notAfter: opts.notAfter ?? T0 + 365 * DAY,
    maxSequence: opts.maxSequence ?? 1_000_000n,
  });
  signer.chain = [delegation];
  const trust = new TrustStore([{ publicKey: root.publicKey, keyId: root.keyId }]);
  return { root, signer, delegation, trust };
}
