// Ed25519 keys (RFC 8032 through node:crypto), key ids, group keys, and their files.
//
// File format (docs/security.md "Keys"): PEM blocks, optionally preceded by '#' comment lines.
//   PREFIX.key  PKCS#8 "PRIVATE KEY" (readable by openssl), then zero or more "IOTUPD CERTIFICATE"
//               blocks (the chain that authorises this key: root rotations, then the delegation).
//   PREFIX.pub  SPKI "PUBLIC KEY", then the same certificate blocks.
//   group key   one "IOTUPD GROUP KEY" block holding 32 random bytes.
// Secret files are created with mode 0600 by open(2) itself (O_CREAT|O_EXCL), never chmod'ed later,
// and refused on load when group or others can read them.
import {
  createHash,
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  randomBytes,
  sign as edSign,
  verify as edVerify,
  type KeyObject,
} from 'node:crypto';
import { closeSync, fstatSync, openSync, readFileSync, statSync, writeSync, fsyncSync } from 'node:fs';
import { SecurityError, StorageError, UsageError } from '../errors.js';
import { ascii, concatBytes, toHex } from './bytes.js';

export const KEY_ID_LENGTH = 8;
export const PUBLIC_KEY_LENGTH = 32;
export const SIGNATURE_LENGTH = 64;
export const GROUP_KEY_LENGTH = 32;

// DER prefixes of an Ed25519 SPKI / PKCS#8 structure (RFC 8410 section 4 and 7); the raw key follows.
const SPKI_PREFIX = Uint8Array.from([0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00]);
const PKCS8_PREFIX = Uint8Array.from([0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20]);

/** A private Ed25519 key able to sign, with the chain of certificates that authorises it. */
export interface SigningKey {
  privateKey: KeyObject;
  publicKey: Uint8Array;
  keyId: Uint8Array;
  /** Encoded certificates (root rotations first, delegation last); empty for a root. */
  chain: Uint8Array[];
}

/** A public Ed25519 key, as pinned in a trust store or shipped in a certificate. */
export interface PublicKeyInfo {
  publicKey: Uint8Array;
  keyId: Uint8Array;
  chain: Uint8Array[];
}

/** Key id: the first 8 bytes of SHA-256 of the raw 32-byte public key. */
export function keyIdOf(publicKey: Uint8Array): Uint8Array {
  if (publicKey.length !== PUBLIC_KEY_LENGTH) throw new SecurityError('Ed25519 public key must be 32 bytes', 'ERR_KEY');
  return new Uint8Array(createHash('sha256').update(publicKey).digest().subarray(0, KEY_ID_LENGTH));
}

export function groupKeyIdOf(groupKey: Uint8Array): Uint8Array {
  return new Uint8Array(createHash('sha256').update(ascii('iotupd group key id\0')).update(groupKey).digest().subarray(0, KEY_ID_LENGTH));
}

export function rawPublicKey(key: KeyObject): Uint8Array {
  const der = new Uint8Array(key.export({ format: 'der', type: 'spki' }));
  if (der.length !== SPKI_PREFIX.length + PUBLIC_KEY_LENGTH || key.asymmetricKeyType !== 'ed25519') {
    throw new SecurityError('not an Ed25519 key', 'ERR_KEY');
  }
  return der.subarray(SPKI_PREFIX.length);
}

export function publicKeyObject(raw: Uint8Array): KeyObject {
  if (raw.length !== PUBLIC_KEY_LENGTH) throw new SecurityError('Ed25519 public key must be 32 bytes', 'ERR_KEY');
  try {
    return createPublicKey({ key: Buffer.from(concatBytes(SPKI_PREFIX, raw)), format: 'der', type: 'spki' });
  } catch {
    throw new SecurityError('invalid Ed25519 public key', 'ERR_KEY');
  }
}

/** The private key from its 32-byte RFC 8032 seed (used for known-answer tests). */
export function privateKeyFromSeed(seed: Uint8Array): KeyObject {
  if (seed.length !== 32) throw new SecurityError('Ed25519 seed must be 32 bytes', 'ERR_KEY');
  return createPrivateKey({ key: Buffer.from(concatBytes(PKCS8_PREFIX, seed)), format: 'der', type: 'pkcs8' });
}

export function signingKeyFrom(privateKey: KeyObject, chain: Uint8Array[] = []): SigningKey {
  if (privateKey.asymmetricKeyType !== 'ed25519') throw new SecurityError('not an Ed25519 private key', 'ERR_KEY');
  const publicKey = rawPublicKey(createPublicKey(privateKey));
  return { privateKey, publicKey, keyId: keyIdOf(publicKey), chain };
}

export function generateSigningKey(): SigningKey {
  return signingKeyFrom(generateKeyPairSync('ed25519').privateKey);
}

export function publicInfo(key: SigningKey): PublicKeyInfo {
  return { publicKey: key.publicKey, keyId: key.keyId, chain: key.chain };
}

export function ed25519Sign(key: KeyObject, message: Uint8Array): Uint8Array {
  return new Uint8Array(edSign(null, message, key));
}

export function ed25519Verify(key: KeyObject, message: Uint8Array, signature: Uint8Array): boolean {
  if (signature.length !== SIGNATURE_LENGTH) return false;
  try {
    return edVerify(null, message, key, signature);
  } catch {
    return false;
  }
}

export function generateGroupKey(): Uint8Array {
  return new Uint8Array(randomBytes(GROUP_KEY_LENGTH));
}

// ---------------------------------------------------------------------------------------------
// Files

interface PemBlock {
  label: string;
  der: Uint8Array;
}

function pem(label: string, der: Uint8Array): string {
  const b64 = Buffer.from(der).toString('base64').replace(/.{1,64}/g, '$&\n');
  return `-----BEGIN ${label}-----\n${b64}-----END ${label}-----\n`;
}

function parsePem(text: string, file: string): PemBlock[] {
  const blocks: PemBlock[] = [];
  const re = /-----BEGIN ([A-Z0-9 ]+)-----\r?\n([A-Za-z0-9+/=\r\n]*?)-----END \1-----/g;
  for (const m of text.matchAll(re)) {
    const b64 = (m[2] ?? '').replace(/\s+/g, '');
    blocks.push({ label: m[1] ?? '', der: new Uint8Array(Buffer.from(b64, 'base64')) });
  }
  if (blocks.length === 0) throw new SecurityError(`${file}: no PEM block found`, 'ERR_KEY_FILE');
  return blocks;
}

/** Create a new file with the given mode atomically from open(2) on; refuse to overwrite unless asked. */
export function writeNewFile(path: string, text: string | Uint8Array, mode: number, overwrite = false): void {
  let fd: number;
  try {
    fd = openSync(path, overwrite ? 'w' : 'wx', mode);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') throw new UsageError(`${path} already exists (refusing to overwrite a key)`);
    throw new StorageError(`cannot create ${path}: ${(err as Error).message}`, 'ERR_STORAGE', { cause: err });
  }
  try {
    // With overwrite the file may pre-exist with a wider mode: refuse rather than chmod after writing.
    if (overwrite && (fstatSync(fd).mode & 0o777 & ~mode) !== 0) {
      throw new SecurityError(`${path} exists with permissions wider than ${mode.toString(8)}`, 'ERR_KEY_PERMS');
    }
    if (typeof text === 'string') writeSync(fd, text);
    else writeSync(fd, text);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

function readSecretFile(path: string): string {
  let st;
  try {
    st = statSync(path);
  } catch (err) {
    throw new StorageError(`cannot read ${path}: ${(err as Error).message}`, 'ERR_STORAGE', { cause: err });
  }
  if ((st.mode & 0o077) !== 0) {
    throw new SecurityError(`${path} is readable by group or others (mode ${(st.mode & 0o777).toString(8)}); it must be 0600`, 'ERR_KEY_PERMS');
  }
  return readFileSync(path, 'utf8');
}

function readPublicFile(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    throw new StorageError(`cannot read ${path}: ${(err as Error).message}`, 'ERR_STORAGE', { cause: err });
  }
}

export const CERT_PEM_LABEL = 'IOTUPD CERTIFICATE';
const GROUP_PEM_LABEL = 'IOTUPD GROUP KEY';

export function formatPrivateKeyFile(key: SigningKey): string {
  const der = new Uint8Array(key.privateKey.export({ format: 'der', type: 'pkcs8' }));
  return (
    `# iotupd Ed25519 private key, key id ${toHex(key.keyId)}. Keep secret (mode 0600).\n` +
    pem('PRIVATE KEY', der) +
    key.chain.map((c) => pem(CERT_PEM_LABEL, c)).join('')
  );
}

export function formatPublicKeyFile(info: PublicKeyInfo): string {
  return (
    `# iotupd Ed25519 public key, key id ${toHex(info.keyId)}\n` +
    pem('PUBLIC KEY', concatBytes(SPKI_PREFIX, info.publicKey)) +
    info.chain.map((c) => pem(CERT_PEM_LABEL, c)).join('')
  );
}

export function formatGroupKeyFile(groupKey: Uint8Array): string {
  return `# iotupd group key, id ${toHex(groupKeyIdOf(groupKey))}. Keep secret (mode 0600).\n` + pem(GROUP_PEM_LABEL, groupKey);
}

export function parsePrivateKeyFile(text: string, file = 'key file'): SigningKey {
  const blocks = parsePem(text, file);
  const keyBlock = blocks.find((b) => b.label === 'PRIVATE KEY');
  if (!keyBlock) throw new SecurityError(`${file}: no PRIVATE KEY block`, 'ERR_KEY_FILE');
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey({ key: Buffer.from(keyBlock.der), format: 'der', type: 'pkcs8' });
  } catch {
    throw new SecurityError(`${file}: PRIVATE KEY block is not a valid PKCS#8 key`, 'ERR_KEY_FILE');
  }
  if (privateKey.asymmetricKeyType !== 'ed25519') throw new SecurityError(`${file}: not an Ed25519 key`, 'ERR_KEY_FILE');
  return signingKeyFrom(
    privateKey,
    blocks.filter((b) => b.label === CERT_PEM_LABEL).map((b) => b.der),
  );
}

export function parsePublicKeyFile(text: string, file = 'public key file'): PublicKeyInfo {
  const blocks = parsePem(text, file);
  const keyBlock = blocks.find((b) => b.label === 'PUBLIC KEY');
  if (!keyBlock) throw new SecurityError(`${file}: no PUBLIC KEY block`, 'ERR_KEY_FILE');
  const der = keyBlock.der;
  if (der.length !== SPKI_PREFIX.length + PUBLIC_KEY_LENGTH || !der.subarray(0, SPKI_PREFIX.length).every((v, i) => v === SPKI_PREFIX[i])) {
    throw new SecurityError(`${file}: PUBLIC KEY block is not an Ed25519 key`, 'ERR_KEY_FILE');
  }
  const publicKey = der.slice(SPKI_PREFIX.length);
  publicKeyObject(publicKey);
  return { publicKey, keyId: keyIdOf(publicKey), chain: blocks.filter((b) => b.label === CERT_PEM_LABEL).map((b) => b.der) };
}

export function parseGroupKeyFile(text: string, file = 'group key file'): Uint8Array {
  const block = parsePem(text, file).find((b) => b.label === GROUP_PEM_LABEL);
  if (!block || block.der.length !== GROUP_KEY_LENGTH) {
    throw new SecurityError(`${file}: no ${GROUP_PEM_LABEL} block of ${GROUP_KEY_LENGTH} bytes`, 'ERR_KEY_FILE');
  }
  return block.der;
}

export function loadSigningKey(path: string): SigningKey {
  return parsePrivateKeyFile(readSecretFile(path), path);
}

export function loadPublicKey(path: string): PublicKeyInfo {
  return parsePublicKeyFile(readPublicFile(path), path);
}

export function loadGroupKey(path: string): Uint8Array {
  return parseGroupKeyFile(readSecretFile(path), path);
}

export function saveKeyPair(prefix: string, key: SigningKey, overwrite = false): { keyFile: string; pubFile: string } {
  const keyFile = `${prefix}.key`;
  const pubFile = `${prefix}.pub`;
  writeNewFile(keyFile, formatPrivateKeyFile(key), 0o600, overwrite);
  writeNewFile(pubFile, formatPublicKeyFile(publicInfo(key)), 0o644, overwrite);
  return { keyFile, pubFile };
}

export function saveGroupKey(path: string, groupKey: Uint8Array, overwrite = false): void {
  writeNewFile(path, formatGroupKeyFile(groupKey), 0o600, overwrite);
}
