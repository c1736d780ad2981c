// The device trust store: pinned Ed25519 keys (offline roots and/or signing keys), revocations,
// and validation of the certificate chain that links a manifest's signer to a pinned key.
import type { KeyObject } from 'node:crypto';
import { DecodeError, SecurityError } from '../errors.js';
import { equalBytes, toHex } from './bytes.js';
import { certIssuer, verifyCertificate, type Delegation } from './certs.js';
import { keyIdOf, publicKeyObject, type PublicKeyInfo } from './keys.js';

export interface TrustAnchor {
  publicKey: Uint8Array;
  keyId: Uint8Array;
  /** Unix seconds after which this pin stops being accepted (end of a rotation window). */
  notAfter?: number;
  label?: string;
}

export interface ChainResult {
  /** Key that must have signed the manifest. */
  signerPublicKey: Uint8Array;
  signerKey: KeyObject;
  signerKeyId: Uint8Array;
  /** The delegation that authorised the signer, when the signer is not pinned itself. */
  delegation?: Delegation;
  /** Pinned key at the root of the chain. */
  anchorKeyId: Uint8Array;
}

export const MAX_CHAIN = 4;

export class TrustStore {
  private readonly anchors = new Map<string, TrustAnchor>();
  private readonly revoked = new Set<string>();
  private readonly keyObjects = new Map<string, KeyObject>();

  constructor(anchors: Iterable<TrustAnchor | PublicKeyInfo> = []) {
    for (const a of anchors) this.pin(a);
  }

  pin(anchor: TrustAnchor | PublicKeyInfo, notAfter?: number): void {
    const keyId = keyIdOf(anchor.publicKey);
    const entry: TrustAnchor = { publicKey: anchor.publicKey, keyId };
    const until = notAfter ?? ('notAfter' in anchor ? anchor.notAfter : undefined);
    if (until !== undefined) entry.notAfter = until;
    if ('label' in anchor && anchor.label !== undefined) entry.label = anchor.label;
    this.anchors.set(toHex(keyId), entry);
  }

  unpin(keyId: Uint8Array): void {
    this.anchors.delete(toHex(keyId));
  }

  /** A revoked key is refused wherever it appears: as pin, issuer, intermediate or signer. */
  revoke(keyId: Uint8Array): void {
    this.revoked.add(toHex(keyId));
  }

  isRevoked(keyId: Uint8Array): boolean {
    return this.revoked.has(toHex(keyId));
  }

  get size(): number {
    return this.anchors.size;
  }

  list(): TrustAnchor[] {
    return [...this.anchors.values()];
  }

  private keyObject(pub: Uint8Array): KeyObject {
    const id = toHex(pub);
    let k = this.keyObjects.get(id);
    if (!k) {
      k = publicKeyObject(pub);
      this.keyObjects.set(id, k);
    }
    return k;
  }

  private anchor(keyId: Uint8Array, now: number | undefined): TrustAnchor {
    const hex = toHex(keyId);
    const a = this.anchors.get(hex);
    if (!a) throw new SecurityError(`key ${hex} is not trusted by this device`, 'ERR_UNTRUSTED_KEY');
    if (this.revoked.has(hex)) throw new SecurityError(`key ${hex} is revoked`, 'ERR_REVOKED');
    if (a.notAfter !== undefined && now !== undefined && now > a.notAfter) {
      throw new SecurityError(`pinned key ${hex} retired at ${a.notAfter}`, 'ERR_REVOKED');
    }
    return a;
  }

  /**
   * Walk `chain` (root rotations, then at most one delegation, last) from a pinned key to the key
   * named `signerKeyId`. Each certificate's signature is checked before its body is read.
   * `now` undefined means the device has no trusted clock: validity windows are then not checked.
   */
  resolve(signerKeyId: Uint8Array, chain: Uint8Array[], now: number | undefined): ChainResult {
    if (chain.length > MAX_CHAIN) throw new SecurityError(`certificate chain longer than ${MAX_CHAIN}`, 'ERR_DELEGATION');
    if (this.revoked.has(toHex(signerKeyId))) throw new SecurityError(`signing key ${toHex(signerKeyId)} is revoked`, 'ERR_REVOKED');
    // A signer pinned itself is trusted directly, whatever chain the manifest also carries.
    if (chain.length === 0 || this.anchors.has(toHex(signerKeyId))) {
      const a = this.anchor(signerKeyId, now);
      return { signerPublicKey: a.publicKey, signerKey: this.keyObject(a.publicKey), signerKeyId: a.keyId, anchorKeyId: a.keyId };
    }
    let issuerId: Uint8Array;
    try {
      issuerId = certIssuer(chain[0] as Uint8Array);
    } catch (err) {
      throw new SecurityError(`malformed certificate: ${(err as Error).message}`, 'ERR_DELEGATION');
    }
    const root = this.anchor(issuerId, now);
    let current = root.publicKey;
    let delegation: Delegation | undefined;
    for (let i = 0; i < chain.length; i++) {
      const bytes = chain[i] as Uint8Array;
      let cert;
      try {
        cert = verifyCertificate(bytes, current);
      } catch (err) {
        if (err instanceof DecodeError) throw new SecurityError(`malformed certificate: ${err.message}`, 'ERR_DELEGATION');
        throw err;
      }
      const subjectId = keyIdOf(cert.subjectKey);
      if (this.revoked.has(toHex(subjectId))) throw new SecurityError(`key ${toHex(subjectId)} is revoked`, 'ERR_REVOKED');
      if (now !== undefined && (now < cert.notBefore || now > cert.notAfter)) {
        throw new SecurityError(
          `${cert.kind} certificate for key ${toHex(subjectId)} is valid ${cert.notBefore}..${cert.notAfter}, now is ${now}`,
          'ERR_DELEGATION',
        );
      }
      if (cert.kind === 'delegation') {
        if (i !== chain.length - 1) throw new SecurityError('a delegated key cannot issue certificates', 'ERR_DELEGATION');
        delegation = cert;
      }
      current = cert.subjectKey;
    }
    const signerId = keyIdOf(current);
    if (!equalBytes(signerId, signerKeyId)) throw new SecurityError('certificate chain does not end at the signing key', 'ERR_DELEGATION');
    const out: ChainResult = { signerPublicKey: current, signerKey: this.keyObject(current), signerKeyId: signerId, anchorKeyId: root.keyId };
    if (delegation) out.delegation = delegation;
    return out;
  }
}
