// Per-packet authentication (and optional encryption) with a group key. Scheme and limits:
// docs/security.md "Per-packet authentication".
//
// Key schedule: K_obj = HKDF-SHA256(IKM = group key, salt = "iotupd packet auth v1",
// info = suite byte || object id), 32 bytes: one key per object and per suite, so a packet of one
// object never verifies under another, and MAC and AEAD never share a key.
//
// Suites and trailer (appended to the datagram; the wire header counts it in "trailer len"):
//   mac                HMAC-SHA256(K_obj, every byte before the trailer), truncated to 16 bytes.
//   poly1305           nonce (12) || tag (16): the ChaCha20-Poly1305 AEAD of RFC 8439 with an empty
//                      plaintext and every byte before the trailer as AAD (a nonce-based MAC; on
//                      WebAssembly, cheaper than the HMAC through node:crypto: docs/security.md "Cost").
//   aes-256-gcm /      nonce (12) || tag (16). AAD = header and extensions (bytes before the
//   chacha20-poly1305  body), plaintext = body, encrypted in place.
// Nonce = 8-byte random salt drawn when the PacketAuth is created || 32-bit packet counter.
// Within one instance the counter never repeats (a new salt is drawn before it wraps); two
// instances (restarted or cooperating senders) share a salt with probability about
// r^2 / 2^65 for r instances per object key. Receivers never seal.
import * as nodeCrypto from 'node:crypto';
import { createCipheriv, createDecipheriv, createHmac, hkdfSync, randomBytes } from 'node:crypto';
import { SecurityError } from '../errors.js';
import { ascii } from './bytes.js';
import { GROUP_KEY_LENGTH } from './keys.js';
import { ChaCha20Poly1305 } from './aead.js';

// crypto.hash (Node >= 20.12): a digest without a Hash object. @types/node 20 does not declare it.
const oneShotHash = (nodeCrypto as unknown as { hash?: (alg: string, data: Uint8Array, enc: 'binary') => string }).hash;

export type AuthSuite = 'mac' | 'poly1305' | 'aes-256-gcm' | 'chacha20-poly1305';
/** The suites that authenticate without encrypting. */
export type MacSuite = Extract<AuthSuite, 'mac' | 'poly1305'>;
const SUITE_IDS: Record<AuthSuite, number> = { mac: 1, 'aes-256-gcm': 2, 'chacha20-poly1305': 3, poly1305: 4 };

export const TAG_LENGTH = 16;
export const NONCE_LENGTH = 12;

export function deriveObjectKey(groupKey: Uint8Array, objectId: Uint8Array, suite: AuthSuite): Buffer {
  if (groupKey.length !== GROUP_KEY_LENGTH) throw new SecurityError(`group key must be ${GROUP_KEY_LENGTH} bytes`, 'ERR_KEY');
  const info = new Uint8Array(1 + objectId.length);
  info[0] = SUITE_IDS[suite];
  info.set(objectId, 1);
  return Buffer.from(hkdfSync('sha256', groupKey, ascii('iotupd packet auth v1'), info, 32));
}

export interface PacketAuthOptions {
  /** Fixed nonce salt (tests and known-answer vectors only). */
  nonceSalt?: Uint8Array;
  /**
   * Where ChaCha20-Poly1305 runs: the WebAssembly module (default, when this Node can instantiate
   * it) or node:crypto (the fallback; also how tests compare the two). Same bytes either way.
   */
  engine?: 'wasm' | 'node';
}

export class PacketAuth {
  readonly suite: AuthSuite;
  readonly encrypts: boolean;
  readonly trailerLength: number;
  private readonly key: Buffer;
  private readonly salt = Buffer.alloc(8);
  private counter = 0;
  /** (K ^ ipad) || room for the message, and (K ^ opad) || inner hash: HMAC's two hash inputs. */
  private inner = Buffer.alloc(64 + 2048);
  private readonly outer = Buffer.alloc(64 + 32);
  /** The tag computed when opening a `mac` packet, compared with the packet's. */
  private readonly tag = new Uint8Array(TAG_LENGTH);
  /** Reused: createCipheriv copies the IV. */
  private readonly nonce = Buffer.alloc(NONCE_LENGTH);
  /** chacha20-poly1305 runs on WebAssembly (aead.ts): cheaper per packet than node:crypto (docs/decisions/0009-chacha20-poly1305-in-webassembly.md). */
  private readonly chacha: ChaCha20Poly1305 | undefined;
  /** The node:crypto cipher of the AEAD suites (and of poly1305 without the module); typed as GCM for @types/node's overloads. */
  private get nodeCipher(): 'aes-256-gcm' | 'chacha20-poly1305' {
    return this.suite === 'aes-256-gcm' ? 'aes-256-gcm' : 'chacha20-poly1305';
  }

  constructor(groupKey: Uint8Array, objectId: Uint8Array, suite: AuthSuite = 'mac', opts: PacketAuthOptions = {}) {
    if (!(suite in SUITE_IDS)) throw new SecurityError(`unknown packet authentication suite '${suite}'`, 'ERR_KEY');
    this.suite = suite;
    this.encrypts = suite === 'aes-256-gcm' || suite === 'chacha20-poly1305';
    this.trailerLength = suite === 'mac' ? TAG_LENGTH : NONCE_LENGTH + TAG_LENGTH;
    this.key = deriveObjectKey(groupKey, objectId, suite);
    if ((suite === 'chacha20-poly1305' || suite === 'poly1305') && opts.engine !== 'node' && ChaCha20Poly1305.available()) this.chacha = new ChaCha20Poly1305(this.key);
    // RFC 2104: a 32-byte key is zero-padded to the 64-byte SHA-256 block.
    for (let i = 0; i < 64; i++) {
      const k = this.key[i] ?? 0;
      this.inner[i] = k ^ 0x36;
      this.outer[i] = k ^ 0x5c;
    }
    if (opts.nonceSalt) {
      if (opts.nonceSalt.length !== 8) throw new SecurityError('nonce salt must be 8 bytes', 'ERR_KEY');
      this.salt.set(opts.nonceSalt);
    } else {
      randomBytes(8).copy(this.salt);
    }
  }

  private nextNonce(): Buffer {
    if (this.counter === 0x100000000) {
      randomBytes(8).copy(this.salt);
      this.counter = 0;
    }
    const nonce = this.nonce;
    this.salt.copy(nonce, 0);
    nonce.writeUInt32BE(this.counter, 8);
    this.counter += 1;
    return nonce;
  }

  /**
   * HMAC-SHA256 (RFC 2104) of `data`, first 16 bytes, written to `out`. Computed as the two hashes
   * of its definition, H((K ^ opad) || H((K ^ ipad) || data)), with Node's one-shot crypto.hash
   * when it exists: creating an Hmac object per packet costs more than hashing the packet, and
   * asking for the digests as latin1 strings allocates no Buffer (docs/benchmarks.md, "Security"). The result is
   * checked against createHmac in the known-answer tests.
   */
  private mac(data: Uint8Array, out: Uint8Array): void {
    if (!oneShotHash) {
      out.set(createHmac('sha256', this.key).update(data).digest().subarray(0, TAG_LENGTH));
      return;
    }
    if (this.inner.length < 64 + data.length) {
      const grown = Buffer.alloc(64 + Math.max(data.length, 2048));
      this.inner.copy(grown, 0, 0, 64);
      this.inner = grown;
    }
    this.inner.set(data, 64);
    const ih = oneShotHash('sha256', this.inner.subarray(0, 64 + data.length), 'binary');
    for (let i = 0; i < 32; i++) this.outer[64 + i] = ih.charCodeAt(i);
    const tag = oneShotHash('sha256', this.outer, 'binary');
    for (let i = 0; i < TAG_LENGTH; i++) out[i] = tag.charCodeAt(i);
  }

  /**
   * Seal in place. `datagram` already has `trailerLength` bytes reserved at its end; the body
   * (encrypted in AEAD suites) runs from `bodyOffset` to the trailer; bytes before it are AAD.
   */
  sealInPlace(datagram: Uint8Array, bodyOffset: number): void {
    const end = datagram.length - this.trailerLength;
    if (bodyOffset < 0 || bodyOffset > end) throw new SecurityError('packet too short for its trailer', 'ERR_AUTH');
    if (this.suite === 'mac') {
      this.mac(datagram.subarray(0, end), datagram.subarray(end, end + TAG_LENGTH));
      return;
    }
    const nonce = this.nextNonce();
    // The poly1305 suite is the AEAD with an empty plaintext: everything before the trailer is AAD.
    const aadEnd = this.suite === 'poly1305' ? end : bodyOffset;
    datagram.set(nonce, end);
    if (this.chacha) {
      this.chacha.seal(nonce, datagram.subarray(0, aadEnd), datagram.subarray(aadEnd, end), datagram.subarray(end + NONCE_LENGTH));
      return;
    }
    const c = createCipheriv(this.nodeCipher as 'aes-256-gcm', this.key, nonce, { authTagLength: TAG_LENGTH });
    c.setAAD(datagram.subarray(0, aadEnd), { plaintextLength: end - aadEnd });
    const body = datagram.subarray(aadEnd, end);
    const ct = c.update(body);
    c.final();
    body.set(ct);
    datagram.set(c.getAuthTag(), end + NONCE_LENGTH);
  }

  /**
   * Verify (and decrypt in place). Returns false, leaving the body unusable, when the tag is
   * wrong: the caller counts an 'auth' drop and must not look at the packet further.
   */
  openInPlace(datagram: Uint8Array, bodyOffset: number): boolean {
    const end = datagram.length - this.trailerLength;
    if (bodyOffset < 0 || bodyOffset > end) return false;
    if (this.suite === 'mac') {
      const tag = this.tag;
      this.mac(datagram.subarray(0, end), tag);
      // Constant time: every byte is compared.
      let diff = 0;
      for (let i = 0; i < TAG_LENGTH; i++) diff |= (tag[i] as number) ^ (datagram[end + i] as number);
      return diff === 0;
    }
    const nonce = datagram.subarray(end, end + NONCE_LENGTH);
    const tag = datagram.subarray(end + NONCE_LENGTH);
    const aadEnd = this.suite === 'poly1305' ? end : bodyOffset;
    if (this.chacha) return this.chacha.open(nonce, datagram.subarray(0, aadEnd), datagram.subarray(aadEnd, end), tag);
    try {
      const d = createDecipheriv(this.nodeCipher as 'aes-256-gcm', this.key, nonce, { authTagLength: TAG_LENGTH });
      d.setAAD(datagram.subarray(0, aadEnd), { plaintextLength: end - aadEnd });
      d.setAuthTag(tag);
      const body = datagram.subarray(aadEnd, end);
      const pt = d.update(body);
      d.final();
      body.set(pt);
      return true;
    } catch {
      return false;
    }
  }

  /** Detached form: returns the (encrypted) payload and the trailer. */
  seal(header: Uint8Array, payload: Uint8Array): { payload: Uint8Array; trailer: Uint8Array } {
    const buf = new Uint8Array(header.length + payload.length + this.trailerLength);
    buf.set(header);
    buf.set(payload, header.length);
    this.sealInPlace(buf, header.length);
    return { payload: buf.slice(header.length, header.length + payload.length), trailer: buf.slice(header.length + payload.length) };
  }

  /** Detached form of openInPlace: the plaintext payload, or null when authentication fails. */
  open(header: Uint8Array, payload: Uint8Array, trailer: Uint8Array): Uint8Array | null {
    if (trailer.length !== this.trailerLength) return null;
    const buf = new Uint8Array(header.length + payload.length + trailer.length);
    buf.set(header);
    buf.set(payload, header.length);
    buf.set(trailer, header.length + payload.length);
    return this.openInPlace(buf, header.length) ? buf.slice(header.length, header.length + payload.length) : null;
  }
}
