// The signed manifest: the one structure a device trusts. Byte layout in docs/security.md.
//
// Envelope (parsed before any signature check; nothing in it is trusted until verified):
//   0   4  magic "IOTM"
//   4   1  envelope version (1)
//   5   8  signer key id
//   13  1  chain length C (0..4), then C x (u16 length, certificate)   -- see certs.ts
//       1  signature count S (1..4), then S x (u8 algorithm, u16 length, signature)
//            algorithm 1 = Ed25519 over "iotupd manifest v1\0" || body. Unknown algorithms are
//            skipped (room for an algorithm change); a known one that fails rejects the manifest.
//       4  body length B (<= 65536), then B bytes of body
// Body (decoded only after the signature verified; fixed field order, canonical):
//   u8 format version (1) | str8 product | u64 sequence | str8 version | u64 created | u64 expires
//   | bytes8 object id (1..32) | u8 hash algorithm (1 = SHA-256) | 32 object hash | u64 size
//   | 12 RaptorQ OTI | u16 block count (= Z of the OTI), then Z x 32 block hashes (blocks.ts)
//   | u8 flags (bit 0 encryption, bit 1 staged rollout, bit 2 signed symbol digests, bits 3-7
//     release policy below; with bits 3-7 clear none of the policy fields is present, so a
//     manifest without a release policy has the same bytes as one from an encoder without them)
//   | [bit 0] u8 cipher (1 AES-256-GCM, 2 ChaCha20-Poly1305), 8 group key id
//   | [bit 1] u16 rollout in basis points (1..10000)
//   | [bit 3] device classes: u8 n (1..16), n x str8 (1..32 bytes), strictly ascending bytewise
//   | [bit 4] hardware selectors: u8 n (1..16), n x str8 (1..64 bytes), strictly ascending bytewise
//   | [bit 5] rollout waves: u8 n (1..16), n x (u64 start, u16 basis points 1..10000), starts
//     strictly increasing, basis points non-decreasing; excludes bit 1
//   | [bit 6] activation window: u64 notBefore, u64 notAfter (notBefore < notAfter)
//   | [bit 7] switch-at: u64 unix seconds
// Lists are sorted and unique so that one policy has one encoding.
import { createHash } from 'node:crypto';
import { DecodeError, SecurityError, UsageError } from '../errors.js';
import { BLOCK_HASH_LENGTH, OTI_LENGTH, parseOti } from './blocks.js';
import { ascii, concatBytes, equalBytes, Reader, toHex, U64_MAX, Writer } from './bytes.js';
import type { Delegation } from './certs.js';
import { ed25519Sign, ed25519Verify, KEY_ID_LENGTH, SIGNATURE_LENGTH, type SigningKey } from './keys.js';
import type { TrustStore } from './trust.js';

export const MANIFEST_VERSION = 1;
export const MAX_MANIFEST_BODY = 65536;
export const MAX_MANIFEST = 70000;
const MAGIC = ascii('IOTM');
const SIG_CONTEXT = ascii('iotupd manifest v1\0');
const ALG_ED25519 = 1;

export type CipherName = 'aes-256-gcm' | 'chacha20-poly1305';
const CIPHER_IDS: Record<CipherName, number> = { 'aes-256-gcm': 1, 'chacha20-poly1305': 2 };

export interface ManifestFields {
  product: string;
  /** Monotonic release number (u64): devices refuse anything <= what they installed. */
  sequence: bigint;
  /** Human version string, informative only. */
  version: string;
  /** Unix seconds. */
  created: number;
  expires: number;
  objectId: Uint8Array;
  /** SHA-256 of the whole object. */
  objectHash: Uint8Array;
  size: number;
  /** RaptorQ OTI, 12 bytes (RFC 6330 3.3.2 + 3.3.3); its F must equal `size`. */
  oti: Uint8Array;
  /** One commitment per source block (blocks.ts blockHash), Z of them. */
  blockHashes: Uint8Array[];
  encryption?: { cipher: CipherName; groupKeyId: Uint8Array };
  /** Staged rollout: share of devices (basis points, 1..10000) that install; see inRollout. */
  rolloutBasisPoints?: number;
  /** The sender publishes signed digest batches of every datagram; receivers require them. */
  symbolDigests?: boolean;
  /** Only devices of one of these classes install (src/agent/rollout.ts). */
  deviceClasses?: string[];
  /** Only devices whose hardware (e.g. board revision) is one of these install. */
  hardware?: string[];
  /** Rollout in waves: from `start` (unix seconds) on, `basisPoints` of the devices install. */
  rolloutWaves?: RolloutWave[];
  /** Devices install only inside [notBefore, notAfter) (unix seconds). */
  activation?: { notBefore: number; notAfter: number };
  /** Devices with a trusted clock install ahead and switch at this time (unix seconds). */
  switchAt?: number;
}

export interface RolloutWave {
  start: number;
  basisPoints: number;
}

export const MAX_POLICY_LIST = 16;
const MAX_CLASS_NAME = 32;
const MAX_HARDWARE_NAME = 64;

function ascending(list: string[]): boolean {
  for (let i = 1; i < list.length; i++) if (Buffer.compare(ascii(list[i - 1] as string), ascii(list[i] as string)) >= 0) return false;
  return true;
}

function checkList(what: string, list: string[], maxName: number): void {
  if (list.length < 1 || list.length > MAX_POLICY_LIST) throw new UsageError(`${what}: 1 to ${MAX_POLICY_LIST} entries`);
  for (const n of list) {
    const len = ascii(n).length;
    if (len < 1 || len > maxName) throw new UsageError(`${what}: each entry must be 1 to ${maxName} bytes`);
  }
  if (!ascending(list)) throw new UsageError(`${what}: entries must be sorted and unique`);
}

function checkTime(what: string, t: number): void {
  if (!Number.isSafeInteger(t) || t < 0) throw new UsageError(`${what} must be unix seconds`);
}

function readList(r: Reader, what: string, maxName: number): string[] {
  const n = r.u8();
  if (n < 1 || n > MAX_POLICY_LIST) throw new DecodeError(`manifest: ${what} count ${n}`);
  const out: string[] = [];
  for (let i = 0; i < n; i++) {
    const v = r.str8(maxName);
    if (v.length === 0) throw new DecodeError(`manifest: empty ${what} entry`);
    out.push(v);
  }
  if (!ascending(out)) throw new DecodeError(`manifest: ${what} not sorted and unique`);
  return out;
}

function readTime(r: Reader, what: string): number {
  const v = r.u64();
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new DecodeError(`manifest: ${what} out of range`);
  return Number(v);
}

export interface Manifest extends ManifestFields {
  signerKeyId: Uint8Array;
  signerPublicKey: Uint8Array;
  anchorKeyId: Uint8Array;
  delegation?: Delegation;
  /** SHA-256 of the signed body: names this exact release. */
  manifestId: Uint8Array;
  bytes: Uint8Array;
}

export interface VerifyPolicy {
  /** The device's product / device class. */
  product: string;
  /** Highest sequence installed (rollback.ts). The manifest must be strictly greater. */
  installedSequence: bigint;
  /** Fast-forward guard: refuse sequence > installed + maxSequenceJump (undefined = no limit). */
  maxSequenceJump?: bigint;
  /**
   * Lower bound for the current time that survives reboots: the highest `created` of any manifest
   * installed. Used when the device has no trusted clock, and to catch a clock set backwards.
   */
  timeFloor?: number;
  /** Seconds a manifest's `created` may lie in the device's future (default 600). */
  maxClockSkew?: number;
}

function checkName(what: string, s: string, min: number): void {
  const n = ascii(s).length;
  if (n < min || n > 64) throw new UsageError(`${what} must be ${min} to 64 bytes`);
}

export function encodeManifestBody(f: ManifestFields): Uint8Array {
  checkName('product', f.product, 1);
  checkName('version', f.version, 0);
  if (f.sequence < 1n || f.sequence > U64_MAX) throw new UsageError('sequence must be 1 .. 2^64-1');
  if (!Number.isSafeInteger(f.created) || !Number.isSafeInteger(f.expires) || f.created < 0 || f.expires <= f.created) {
    throw new UsageError('expires must be after created (unix seconds)');
  }
  if (f.objectId.length < 1 || f.objectId.length > 32) throw new UsageError('object id must be 1 to 32 bytes');
  const oti = parseOti(f.oti);
  if (oti.F !== f.size) throw new UsageError(`OTI transfer length ${oti.F} differs from size ${f.size}`);
  if (f.blockHashes.length !== oti.Z) throw new UsageError(`${f.blockHashes.length} block hashes for ${oti.Z} source blocks`);
  const w = new Writer()
    .u8(MANIFEST_VERSION)
    .str8(f.product)
    .u64(f.sequence)
    .str8(f.version)
    .u64(BigInt(f.created))
    .u64(BigInt(f.expires))
    .bytes8(f.objectId)
    .u8(1)
    .fixed(f.objectHash, 32)
    .u64(BigInt(f.size))
    .fixed(f.oti, OTI_LENGTH)
    .u16(f.blockHashes.length);
  for (const h of f.blockHashes) w.fixed(h, BLOCK_HASH_LENGTH);
  const flags =
    (f.encryption ? 1 : 0) |
    (f.rolloutBasisPoints !== undefined ? 2 : 0) |
    (f.symbolDigests ? 4 : 0) |
    (f.deviceClasses !== undefined ? 8 : 0) |
    (f.hardware !== undefined ? 16 : 0) |
    (f.rolloutWaves !== undefined ? 32 : 0) |
    (f.activation !== undefined ? 64 : 0) |
    (f.switchAt !== undefined ? 128 : 0);
  w.u8(flags);
  if (f.encryption) w.u8(CIPHER_IDS[f.encryption.cipher]).fixed(f.encryption.groupKeyId, KEY_ID_LENGTH);
  if (f.rolloutBasisPoints !== undefined) {
    if (!Number.isInteger(f.rolloutBasisPoints) || f.rolloutBasisPoints < 1 || f.rolloutBasisPoints > 10000) {
      throw new UsageError('rollout must be 1 .. 10000 basis points');
    }
    w.u16(f.rolloutBasisPoints);
  }
  if (f.deviceClasses !== undefined) {
    checkList('device classes', f.deviceClasses, MAX_CLASS_NAME);
    w.u8(f.deviceClasses.length);
    for (const c of f.deviceClasses) w.str8(c);
  }
  if (f.hardware !== undefined) {
    checkList('hardware selectors', f.hardware, MAX_HARDWARE_NAME);
    w.u8(f.hardware.length);
    for (const h of f.hardware) w.str8(h);
  }
  if (f.rolloutWaves !== undefined) {
    const waves = f.rolloutWaves;
    if (f.rolloutBasisPoints !== undefined) throw new UsageError('rollout waves and a single rollout share exclude each other');
    if (waves.length < 1 || waves.length > MAX_POLICY_LIST) throw new UsageError(`rollout waves: 1 to ${MAX_POLICY_LIST} waves`);
    w.u8(waves.length);
    waves.forEach((wave, i) => {
      checkTime('rollout wave start', wave.start);
      if (!Number.isInteger(wave.basisPoints) || wave.basisPoints < 1 || wave.basisPoints > 10000) throw new UsageError('rollout wave must be 1 .. 10000 basis points');
      const prev = waves[i - 1];
      if (prev && (wave.start <= prev.start || wave.basisPoints < prev.basisPoints)) {
        throw new UsageError('rollout waves: starts must increase and shares must not decrease');
      }
      w.u64(BigInt(wave.start)).u16(wave.basisPoints);
    });
  }
  if (f.activation !== undefined) {
    checkTime('activation notBefore', f.activation.notBefore);
    checkTime('activation notAfter', f.activation.notAfter);
    if (f.activation.notBefore >= f.activation.notAfter) throw new UsageError('activation window: notBefore must be before notAfter');
    w.u64(BigInt(f.activation.notBefore)).u64(BigInt(f.activation.notAfter));
  }
  if (f.switchAt !== undefined) {
    checkTime('switch-at', f.switchAt);
    w.u64(BigInt(f.switchAt));
  }
  const body = w.finish();
  if (body.length > MAX_MANIFEST_BODY) throw new UsageError('manifest body too large');
  return body;
}

export function decodeManifestBody(body: Uint8Array): ManifestFields {
  const r = new Reader(body, 'manifest');
  if (r.u8() !== MANIFEST_VERSION) throw new DecodeError('manifest: unsupported format version');
  const product = r.str8(64);
  if (product.length === 0) throw new DecodeError('manifest: empty product');
  const sequence = r.u64();
  if (sequence === 0n) throw new DecodeError('manifest: sequence 0');
  const version = r.str8(64);
  const created = r.u64();
  const expires = r.u64();
  if (created > BigInt(Number.MAX_SAFE_INTEGER) || expires > BigInt(Number.MAX_SAFE_INTEGER) || expires <= created) {
    throw new DecodeError('manifest: bad validity period');
  }
  const objectId = r.bytes8(32).slice();
  if (objectId.length === 0) throw new DecodeError('manifest: empty object id');
  if (r.u8() !== 1) throw new DecodeError('manifest: unknown hash algorithm');
  const objectHash = r.fixed(32).slice();
  const size = r.u64();
  const otiBytes = r.fixed(OTI_LENGTH).slice();
  const oti = parseOti(otiBytes);
  if (BigInt(oti.F) !== size) throw new DecodeError('manifest: size differs from OTI transfer length');
  const nBlocks = r.u16();
  if (nBlocks !== oti.Z) throw new DecodeError('manifest: block count differs from OTI');
  const blockHashes: Uint8Array[] = [];
  for (let i = 0; i < nBlocks; i++) blockHashes.push(r.fixed(BLOCK_HASH_LENGTH).slice());
  const flags = r.u8();
  const f: ManifestFields = {
    product,
    sequence,
    version,
    created: Number(created),
    expires: Number(expires),
    objectId,
    objectHash,
    size: oti.F,
    oti: otiBytes,
    blockHashes,
  };
  if (flags & 1) {
    const id = r.u8();
    const cipher = (Object.keys(CIPHER_IDS) as CipherName[]).find((c) => CIPHER_IDS[c] === id);
    if (!cipher) throw new DecodeError('manifest: unknown cipher');
    f.encryption = { cipher, groupKeyId: r.fixed(KEY_ID_LENGTH).slice() };
  }
  if (flags & 2) {
    const bp = r.u16();
    if (bp < 1 || bp > 10000) throw new DecodeError('manifest: rollout out of range');
    f.rolloutBasisPoints = bp;
  }
  if (flags & 4) f.symbolDigests = true;
  if (flags & 8) f.deviceClasses = readList(r, 'device class', MAX_CLASS_NAME);
  if (flags & 16) f.hardware = readList(r, 'hardware selector', MAX_HARDWARE_NAME);
  if (flags & 32) {
    if (flags & 2) throw new DecodeError('manifest: rollout waves and a single rollout share together');
    const n = r.u8();
    if (n < 1 || n > MAX_POLICY_LIST) throw new DecodeError(`manifest: rollout wave count ${n}`);
    const waves: RolloutWave[] = [];
    for (let i = 0; i < n; i++) {
      const start = readTime(r, 'rollout wave start');
      const basisPoints = r.u16();
      if (basisPoints < 1 || basisPoints > 10000) throw new DecodeError('manifest: rollout wave out of range');
      const prev = waves[i - 1];
      if (prev && (start <= prev.start || basisPoints < prev.basisPoints)) throw new DecodeError('manifest: rollout waves out of order');
      waves.push({ start, basisPoints });
    }
    f.rolloutWaves = waves;
  }
  if (flags & 64) {
    const notBefore = readTime(r, 'activation notBefore');
    const notAfter = readTime(r, 'activation notAfter');
    if (notBefore >= notAfter) throw new DecodeError('manifest: empty activation window');
    f.activation = { notBefore, notAfter };
  }
  if (flags & 128) f.switchAt = readTime(r, 'switch-at');
  r.end();
  return f;
}

/** Sign a manifest. The chain comes from the key file unless `chain` overrides it. */
export function signManifest(fields: ManifestFields, signingKey: SigningKey, chain?: Uint8Array[]): Uint8Array {
  const body = encodeManifestBody(fields);
  const certs = chain ?? signingKey.chain;
  if (certs.length > 4) throw new UsageError('certificate chain longer than 4');
  const sig = ed25519Sign(signingKey.privateKey, concatBytes(SIG_CONTEXT, body));
  const w = new Writer().fixed(MAGIC, 4).u8(1).fixed(signingKey.keyId, KEY_ID_LENGTH).u8(certs.length);
  for (const c of certs) w.bytes16(c);
  w.u8(1).u8(ALG_ED25519).bytes16(sig);
  w.bytes32(body);
  return w.finish();
}

interface Envelope {
  signerKeyId: Uint8Array;
  chain: Uint8Array[];
  signatures: { alg: number; sig: Uint8Array }[];
  body: Uint8Array;
}

function parseEnvelope(bytes: Uint8Array): Envelope {
  if (bytes.length > MAX_MANIFEST) throw new DecodeError('manifest: too large');
  const r = new Reader(bytes, 'manifest envelope');
  if (!equalBytes(r.fixed(4), MAGIC)) throw new DecodeError('manifest envelope: bad magic');
  if (r.u8() !== 1) throw new DecodeError('manifest envelope: unsupported version');
  const signerKeyId = r.fixed(KEY_ID_LENGTH);
  const nCerts = r.u8();
  if (nCerts > 4) throw new DecodeError('manifest envelope: chain too long');
  const chain: Uint8Array[] = [];
  for (let i = 0; i < nCerts; i++) chain.push(r.bytes16(2048));
  const nSigs = r.u8();
  if (nSigs < 1 || nSigs > 4) throw new DecodeError('manifest envelope: bad signature count');
  const signatures: { alg: number; sig: Uint8Array }[] = [];
  for (let i = 0; i < nSigs; i++) signatures.push({ alg: r.u8(), sig: r.bytes16(4096) });
  const body = r.bytes32(MAX_MANIFEST_BODY);
  r.end();
  return { signerKeyId, chain, signatures, body };
}

function fail(code: string, message: string): never {
  throw new SecurityError(message, code);
}

/**
 * Verify a manifest. Order matters: (1) parse the envelope only; (2) resolve the signer through
 * the trust store (certificate signatures checked before their bodies are read); (3) verify the
 * signature over the body; only then (4) decode the body and (5) apply the policy. Every failure
 * is a SecurityError with a stable code: ERR_MALFORMED, ERR_UNTRUSTED_KEY, ERR_REVOKED,
 * ERR_DELEGATION, ERR_SIGNATURE, ERR_WRONG_PRODUCT, ERR_EXPIRED, ERR_NOT_YET_VALID, ERR_ROLLBACK,
 * ERR_FAST_FORWARD.
 *
 * `now` is unix seconds from a trusted clock, or undefined when the device has none: validity
 * windows are then checked against policy.timeFloor only, and the sequence number still refuses
 * every replay.
 */
export function verifyManifest(bytes: Uint8Array, trust: TrustStore, policy: VerifyPolicy, now: number | undefined): Manifest {
  let env: Envelope;
  try {
    env = parseEnvelope(bytes);
  } catch (err) {
    if (err instanceof DecodeError) fail('ERR_MALFORMED', err.message);
    throw err;
  }
  const floor = policy.timeFloor;
  const effectiveNow = now === undefined ? floor : floor === undefined ? now : Math.max(now, floor);
  const chain = trust.resolve(env.signerKeyId, env.chain, effectiveNow);

  const signed = concatBytes(SIG_CONTEXT, env.body);
  let verified = false;
  for (const s of env.signatures) {
    if (s.alg !== ALG_ED25519) continue;
    if (s.sig.length !== SIGNATURE_LENGTH || !ed25519Verify(chain.signerKey, signed, s.sig)) {
      fail('ERR_SIGNATURE', `manifest signature by key ${toHex(env.signerKeyId)} does not verify`);
    }
    verified = true;
  }
  if (!verified) fail('ERR_SIGNATURE', 'manifest carries no signature of a supported algorithm');

  let f: ManifestFields;
  try {
    f = decodeManifestBody(env.body);
  } catch (err) {
    if (err instanceof DecodeError) fail('ERR_MALFORMED', err.message);
    throw err;
  }

  const d = chain.delegation;
  if (d) {
    if (!d.products.includes('*') && !d.products.includes(f.product)) {
      fail('ERR_DELEGATION', `signing key ${toHex(chain.signerKeyId)} is not delegated for product '${f.product}'`);
    }
    if (f.sequence < d.minSequence || f.sequence > d.maxSequence) {
      fail('ERR_DELEGATION', `sequence ${f.sequence} outside the delegated range ${d.minSequence}..${d.maxSequence}`);
    }
  }
  if (f.product !== policy.product) fail('ERR_WRONG_PRODUCT', `manifest is for product '${f.product}', this device is '${policy.product}'`);
  if (effectiveNow !== undefined && effectiveNow > f.expires) {
    fail('ERR_EXPIRED', `manifest expired at ${new Date(f.expires * 1000).toISOString()}`);
  }
  if (now !== undefined && f.created > now + (policy.maxClockSkew ?? 600)) {
    fail('ERR_NOT_YET_VALID', `manifest created at ${new Date(f.created * 1000).toISOString()}, in the future`);
  }
  if (f.sequence <= policy.installedSequence) {
    fail('ERR_ROLLBACK', `sequence ${f.sequence} is not newer than installed ${policy.installedSequence}`);
  }
  if (policy.maxSequenceJump !== undefined && f.sequence - policy.installedSequence > policy.maxSequenceJump) {
    fail('ERR_FAST_FORWARD', `sequence ${f.sequence} jumps more than ${policy.maxSequenceJump} past installed ${policy.installedSequence}`);
  }
  const m: Manifest = {
    ...f,
    signerKeyId: chain.signerKeyId,
    signerPublicKey: chain.signerPublicKey,
    anchorKeyId: chain.anchorKeyId,
    manifestId: new Uint8Array(createHash('sha256').update(env.body).digest()),
    bytes,
  };
  if (d) m.delegation = d;
  return m;
}

/** Decode without verifying, for display only (`iotupd manifest inspect`). Never install from this. */
export function inspectManifest(bytes: Uint8Array): { signerKeyId: Uint8Array; chain: Uint8Array[]; fields: ManifestFields } {
  const env = parseEnvelope(bytes);
  return { signerKeyId: env.signerKeyId, chain: env.chain, fields: decodeManifestBody(env.body) };
}

/**
 * Staged rollout: a device installs when SHA-256("iotupd rollout\0" || product || 0 || sequence ||
 * device id) mod 10000 < rolloutBasisPoints. Bound to the sequence so each release picks afresh.
 */
export function inRollout(m: ManifestFields, deviceId: Uint8Array): boolean {
  if (m.rolloutBasisPoints === undefined) return true;
  return rolloutPosition(m, deviceId) < m.rolloutBasisPoints;
}

/**
 * The device's place in a release's rollout, 0..9999: it installs once the share in force (basis
 * points) exceeds it. Waves (rolloutWaves) use the same place, so a device in wave 1 stays in.
 */
export function rolloutPosition(m: Pick<ManifestFields, 'product' | 'sequence'>, deviceId: Uint8Array): number {
  const seq = new Writer().u64(m.sequence).finish();
  const h = createHash('sha256').update(ascii('iotupd rollout\0')).update(ascii(m.product)).update(Uint8Array.of(0)).update(seq).update(deviceId).digest();
  return h.readUInt32BE(0) % 10000;
}

/**
 * Compare the unsigned object description a transfer announces with the signed manifest. A
 * mismatch (mix-and-match: manifest of one release, data of another) is ERR_MISMATCH.
 */
export function checkDescription(m: ManifestFields, d: { objectId?: Uint8Array; size?: number; oti?: Uint8Array; hash?: Uint8Array }): void {
  if (d.objectId && !equalBytes(d.objectId, m.objectId)) fail('ERR_MISMATCH', 'object id differs from the signed manifest');
  if (d.size !== undefined && d.size !== m.size) fail('ERR_MISMATCH', `object size ${d.size} differs from signed ${m.size}`);
  if (d.oti && !equalBytes(d.oti, m.oti)) fail('ERR_MISMATCH', 'OTI differs from the signed manifest');
  if (d.hash && d.hash.length === 32 && !equalBytes(d.hash, m.objectHash)) fail('ERR_MISMATCH', 'object hash differs from the signed manifest');
}
