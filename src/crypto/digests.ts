// Signed digest batches: the defence against an INSIDER (a holder of the group key) who injects
// valid-looking symbols. The sender signs, with the manifest's signing key, the digests of the next
// datagrams it will send, and sends that batch ahead of them; a receiver that requires digests
// accepts a datagram only when its digest is in a batch it verified. Group-key tags stop outsiders
// before any signature check, so only an insider can make a receiver spend Ed25519 verifications
// (docs/decisions/0008-packet-authentication.md).
//
// Batch body (SIGNATURE packet of the fountain protocol):
//   0   4  magic "IOTD"
//   4   1  version (1)
//   5   1  count n (1..64)
//   6   4  batch number (u32, per sender run; copies of a batch share it)
//   10  8  signer key id
//   18  1  object id length L (1..32), then L bytes
//       n x 16  digests: SHA-256(datagram as sent, trailer included), first 16 bytes
//       64 Ed25519 signature over "iotupd digests v1\0" || all bytes above
import * as nodeCrypto from 'node:crypto';
import { createHash, type KeyObject } from 'node:crypto';
import { DecodeError } from '../errors.js';
import { ascii, concatBytes, equalBytes, Reader, Writer } from './bytes.js';
import { ed25519Sign, ed25519Verify, KEY_ID_LENGTH, keyIdOf, publicKeyObject, SIGNATURE_LENGTH, type SigningKey } from './keys.js';

export const DIGEST_LENGTH = 16;
export const MAX_BATCH = 64;
const MAGIC = ascii('IOTD');
const CONTEXT = ascii('iotupd digests v1\0');

// crypto.hash (Node >= 20.12) is a one-shot digest without a Hash object, much cheaper per
// 1.2 KB datagram than createHash. @types/node 20 does not declare it.
const oneShot = (nodeCrypto as unknown as { hash?: (alg: string, data: Uint8Array, enc: 'binary') => string }).hash;

/**
 * SHA-256(datagram)[0..16] as a 16-character latin1 ('binary') string: the verifier's map key, and the
 * signer's bytes (one char code per byte). Asked of node:crypto as a string, it allocates no
 * Buffer, which is a large share of the cost of a 1.2 KB datagram's digest (docs/benchmarks.md,
 * "Security").
 */
export function digestKey(datagram: Uint8Array): string {
  const h = oneShot ? oneShot('sha256', datagram, 'binary') : createHash('sha256').update(datagram).digest('binary');
  return h.slice(0, DIGEST_LENGTH);
}

function key(d: Uint8Array): string {
  return Buffer.from(d.buffer, d.byteOffset, d.byteLength).toString('latin1');
}

/** Sender side: signs batches of datagram digests, numbering them. */
export class DigestSigner {
  private batchNumber = 0;
  constructor(
    private readonly signingKey: SigningKey,
    private readonly objectId: Uint8Array,
  ) {}

  /** The batch body covering `datagrams` (already sealed, exactly as they will be sent). */
  sign(datagrams: Uint8Array[]): Uint8Array {
    if (datagrams.length < 1 || datagrams.length > MAX_BATCH) throw new DecodeError(`a digest batch covers 1 to ${MAX_BATCH} datagrams`);
    const w = new Writer()
      .fixed(MAGIC, 4)
      .u8(1)
      .u8(datagrams.length)
      .u32(this.batchNumber >>> 0)
      .fixed(this.signingKey.keyId, KEY_ID_LENGTH)
      .bytes8(this.objectId);
    const digests = new Uint8Array(datagrams.length * DIGEST_LENGTH);
    datagrams.forEach((d, i) => {
      const k = digestKey(d);
      for (let j = 0; j < DIGEST_LENGTH; j++) digests[i * DIGEST_LENGTH + j] = k.charCodeAt(j);
    });
    w.fixed(digests, digests.length);
    const tbs = w.finish();
    this.batchNumber += 1;
    return concatBytes(tbs, ed25519Sign(this.signingKey.privateKey, concatBytes(CONTEXT, tbs)));
  }
}

export type BatchResult = 'accepted' | 'duplicate' | 'foreign' | 'malformed' | 'bad-signature';

export interface DigestVerifierStats {
  batches: number;
  duplicates: number;
  badSignatures: number;
  malformed: number;
  foreign: number;
  accepted: number;
  unknown: number;
}

/**
 * Receiver side: holds the digests of the most recent `windowBatches` verified batches (bounded
 * memory: 64 x 16 bytes per batch) and answers whether a datagram was signed for.
 */
export class DigestVerifier {
  readonly stats: DigestVerifierStats = { batches: 0, duplicates: 0, badSignatures: 0, malformed: 0, foreign: 0, accepted: 0, unknown: 0 };
  private readonly signer: KeyObject;
  private readonly signerKeyId: Uint8Array;
  private readonly digests = new Map<string, number>();
  private readonly window: { id: string; digests: string[] }[] = [];
  private readonly seen = new Set<string>();
  private readonly failed = new Set<string>();

  constructor(
    signerPublicKey: Uint8Array,
    private readonly objectId: Uint8Array,
    private readonly windowBatches = 1024,
  ) {
    this.signer = publicKeyObject(signerPublicKey);
    this.signerKeyId = keyIdOf(signerPublicKey);
  }

  addBatch(body: Uint8Array): BatchResult {
    let n: number;
    let batchId: string;
    let digestStart: number;
    try {
      if (body.length < 19 + DIGEST_LENGTH + SIGNATURE_LENGTH || body.length > 2048) throw new DecodeError('digest batch: bad length');
      const r = new Reader(body.subarray(0, body.length - SIGNATURE_LENGTH), 'digest batch');
      if (!equalBytes(r.fixed(4), MAGIC) || r.u8() !== 1) throw new DecodeError('digest batch: bad magic or version');
      n = r.u8();
      if (n < 1 || n > MAX_BATCH) throw new DecodeError('digest batch: bad count');
      const batchNumber = r.u32();
      const keyId = r.fixed(KEY_ID_LENGTH);
      const objectId = r.bytes8(32);
      if (!equalBytes(keyId, this.signerKeyId) || !equalBytes(objectId, this.objectId)) {
        this.stats.foreign += 1;
        return 'foreign';
      }
      digestStart = r.offset;
      r.fixed(n * DIGEST_LENGTH);
      r.end();
      batchId = `${batchNumber}:${key(createHash('sha256').update(body).digest().subarray(0, 16))}`;
    } catch {
      this.stats.malformed += 1;
      return 'malformed';
    }
    if (this.seen.has(batchId)) {
      this.stats.duplicates += 1;
      return 'duplicate';
    }
    const tbs = body.subarray(0, body.length - SIGNATURE_LENGTH);
    if (this.failed.has(batchId)) {
      this.stats.badSignatures += 1;
      return 'bad-signature';
    }
    if (!ed25519Verify(this.signer, concatBytes(CONTEXT, tbs), body.subarray(body.length - SIGNATURE_LENGTH))) {
      // Remember failures (bounded) so repeats of one forged batch cost one verification.
      if (this.failed.size >= 256) this.failed.delete(this.failed.values().next().value as string);
      this.failed.add(batchId);
      this.stats.badSignatures += 1;
      return 'bad-signature';
    }
    const list: string[] = [];
    for (let i = 0; i < n; i++) {
      const k = key(body.subarray(digestStart + i * DIGEST_LENGTH, digestStart + (i + 1) * DIGEST_LENGTH));
      this.digests.set(k, (this.digests.get(k) ?? 0) + 1);
      list.push(k);
    }
    this.seen.add(batchId);
    this.window.push({ id: batchId, digests: list });
    while (this.window.length > this.windowBatches) {
      const old = this.window.shift() as { id: string; digests: string[] };
      this.seen.delete(old.id);
      for (const k of old.digests) {
        const c = (this.digests.get(k) ?? 1) - 1;
        if (c <= 0) this.digests.delete(k);
        else this.digests.set(k, c);
      }
    }
    this.stats.batches += 1;
    return 'accepted';
  }

  /** True when `datagram` (as received, trailer included) is covered by a verified batch. */
  check(datagram: Uint8Array): boolean {
    const ok = this.digests.has(digestKey(datagram));
    if (ok) this.stats.accepted += 1;
    else this.stats.unknown += 1;
    return ok;
  }
}
