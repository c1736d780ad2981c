// Certificates of the key hierarchy: an offline root delegates to online signing keys, and an old
// root introduces its successor (root rotation). Canonical binary, signature last:
//
//   0      4  magic "IOTC"
//   4      1  version (1)
//   5      1  kind: 1 delegation, 2 root rotation
//   6      8  issuer key id
//   14    32  subject Ed25519 public key
//   46     8  notBefore (unix seconds)
//   54     8  notAfter  (unix seconds)
//   delegation only:
//   62     8  minSequence  \ the subject may sign manifests only with sequence numbers in
//   70     8  maxSequence  / [min, max]: the root bounds what a stolen signing key can do
//   78     1  product count P (1..16), then P x (u8 length, UTF-8 product name); "*" means any
//   end   64  Ed25519 signature by the issuer over every byte before it
//
// A verifier reads only the issuer key id (fixed offset) and checks the signature before it
// decodes anything else. Why delegations carry a sequence range:
// docs/decisions/0010-fast-forward-bounded-by-delegation.md.
import { DecodeError, SecurityError, UsageError } from '../errors.js';
import { ascii, equalBytes, Reader, U64_MAX, Writer } from './bytes.js';
import { ed25519Sign, ed25519Verify, KEY_ID_LENGTH, keyIdOf, PUBLIC_KEY_LENGTH, publicKeyObject, SIGNATURE_LENGTH, type SigningKey } from './keys.js';

const MAGIC = ascii('IOTC');
export const CERT_VERSION = 1;
export const MAX_PRODUCTS = 16;
export const MAX_NAME = 64;
const MAX_CERT = 4 + 2 + 8 + 32 + 16 + 16 + 1 + MAX_PRODUCTS * (1 + MAX_NAME) + SIGNATURE_LENGTH;

export type CertKind = 'delegation' | 'rotation';

export interface Delegation {
  kind: 'delegation';
  issuerKeyId: Uint8Array;
  subjectKey: Uint8Array;
  notBefore: number;
  notAfter: number;
  minSequence: bigint;
  maxSequence: bigint;
  products: string[];
}

export interface RootRotation {
  kind: 'rotation';
  issuerKeyId: Uint8Array;
  subjectKey: Uint8Array;
  notBefore: number;
  notAfter: number;
}

export type Certificate = Delegation | RootRotation;

export interface DelegationOptions {
  products: string[];
  notBefore: number;
  notAfter: number;
  minSequence?: bigint;
  maxSequence?: bigint;
}

function checkTime(name: string, v: number): void {
  if (!Number.isSafeInteger(v) || v < 0) throw new UsageError(`${name} must be a non-negative integer number of seconds`);
}

function checkProducts(products: string[]): void {
  if (products.length < 1 || products.length > MAX_PRODUCTS) throw new UsageError(`a delegation names 1 to ${MAX_PRODUCTS} products`);
  for (const p of products) {
    const n = ascii(p).length;
    if (n < 1 || n > MAX_NAME) throw new UsageError(`product name must be 1 to ${MAX_NAME} bytes: '${p}'`);
  }
}

function encodeTbs(cert: Certificate): Uint8Array {
  const w = new Writer()
    .fixed(MAGIC, 4)
    .u8(CERT_VERSION)
    .u8(cert.kind === 'delegation' ? 1 : 2)
    .fixed(cert.issuerKeyId, KEY_ID_LENGTH)
    .fixed(cert.subjectKey, PUBLIC_KEY_LENGTH)
    .u64(BigInt(cert.notBefore))
    .u64(BigInt(cert.notAfter));
  if (cert.kind === 'delegation') {
    w.u64(cert.minSequence).u64(cert.maxSequence).u8(cert.products.length);
    for (const p of cert.products) w.str8(p);
  }
  return w.finish();
}

function issue(issuer: SigningKey, cert: Certificate): Uint8Array {
  checkTime('notBefore', cert.notBefore);
  checkTime('notAfter', cert.notAfter);
  if (cert.notAfter <= cert.notBefore) throw new UsageError('certificate expiry must be after its start');
  const tbs = encodeTbs(cert);
  const out = new Uint8Array(tbs.length + SIGNATURE_LENGTH);
  out.set(tbs);
  out.set(ed25519Sign(issuer.privateKey, tbs), tbs.length);
  return out;
}

/** Root signs {signing key, products, validity, sequence range}. */
export function issueDelegation(root: SigningKey, subjectKey: Uint8Array, opts: DelegationOptions): Uint8Array {
  checkProducts(opts.products);
  const minSequence = opts.minSequence ?? 1n;
  const maxSequence = opts.maxSequence ?? U64_MAX;
  if (minSequence < 0n || maxSequence > U64_MAX || minSequence > maxSequence) throw new UsageError('invalid delegation sequence range');
  return issue(root, {
    kind: 'delegation',
    issuerKeyId: root.keyId,
    subjectKey,
    notBefore: opts.notBefore,
    notAfter: opts.notAfter,
    minSequence,
    maxSequence,
    products: opts.products,
  });
}

/** Old root introduces its successor; devices pinning the old root follow the link. */
export function issueRootRotation(oldRoot: SigningKey, newRootKey: Uint8Array, notBefore: number, notAfter = Number.MAX_SAFE_INTEGER): Uint8Array {
  return issue(oldRoot, { kind: 'rotation', issuerKeyId: oldRoot.keyId, subjectKey: newRootKey, notBefore, notAfter });
}

/** The issuer key id, read at its fixed offset without trusting anything else. */
export function certIssuer(bytes: Uint8Array): Uint8Array {
  if (bytes.length < 14 + SIGNATURE_LENGTH || bytes.length > MAX_CERT) throw new DecodeError('certificate: bad length');
  if (!equalBytes(bytes.subarray(0, 4), MAGIC)) throw new DecodeError('certificate: bad magic');
  return bytes.subarray(6, 14);
}

/**
 * Check the certificate's signature with the issuer's public key, then decode it. Throws
 * SecurityError ERR_DELEGATION on a bad signature, DecodeError on malformed bytes.
 */
export function verifyCertificate(bytes: Uint8Array, issuerPublicKey: Uint8Array): Certificate {
  const issuerKeyId = certIssuer(bytes);
  if (!equalBytes(issuerKeyId, keyIdOf(issuerPublicKey))) throw new SecurityError('certificate issuer key id mismatch', 'ERR_DELEGATION');
  const tbs = bytes.subarray(0, bytes.length - SIGNATURE_LENGTH);
  const sig = bytes.subarray(bytes.length - SIGNATURE_LENGTH);
  if (!ed25519Verify(publicKeyObject(issuerPublicKey), tbs, sig)) {
    throw new SecurityError('certificate signature does not verify', 'ERR_DELEGATION');
  }
  return decodeCertificateUnverified(bytes);
}

/** Decode without checking the signature: for display (`manifest inspect`) only. */
export function decodeCertificateUnverified(bytes: Uint8Array): Certificate {
  certIssuer(bytes);
  const r = new Reader(bytes.subarray(0, bytes.length - SIGNATURE_LENGTH), 'certificate');
  r.fixed(4);
  if (r.u8() !== CERT_VERSION) throw new DecodeError('certificate: unsupported version');
  const kind = r.u8();
  const issuerKeyId = r.fixed(KEY_ID_LENGTH).slice();
  const subjectKey = r.fixed(PUBLIC_KEY_LENGTH).slice();
  const notBefore = toSeconds(r.u64());
  const notAfter = toSeconds(r.u64());
  if (kind === 2) {
    r.end();
    return { kind: 'rotation', issuerKeyId, subjectKey, notBefore, notAfter };
  }
  if (kind !== 1) throw new DecodeError(`certificate: unknown kind ${kind}`);
  const minSequence = r.u64();
  const maxSequence = r.u64();
  const n = r.u8();
  if (n < 1 || n > MAX_PRODUCTS) throw new DecodeError('certificate: bad product count');
  const products: string[] = [];
  for (let i = 0; i < n; i++) {
    const p = r.str8(MAX_NAME);
    if (p.length === 0) throw new DecodeError('certificate: empty product name');
    products.push(p);
  }
  r.end();
  if (minSequence > maxSequence) throw new DecodeError('certificate: empty sequence range');
  return { kind: 'delegation', issuerKeyId, subjectKey, notBefore, notAfter, minSequence, maxSequence, products };
}

/** u64 seconds clamped into a JS number (times beyond 2^53 s are "never"). */
function toSeconds(v: bigint): number {
  return v > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(v);
}
