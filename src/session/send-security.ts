// Send-side security of a fountain transfer as a library API (docs/security.md "Integration"):
// what a sender signs, tags, encrypts and adds to the stream, validated here once, and turned
// into what the send pipeline needs: the FountainSender's sealer, the hashing pass's observer
// (per-block commitments) and the security stage (src/transfer/pipeline.ts SendStage).
import type { Oti } from '../fec/index.js';
import type { SendStage } from '../transfer/pipeline.js';
import type { Sealer } from '../wire/fountain.js';
import { UsageError } from '../errors.js';
import { toHex, equalBytes } from '../crypto/bytes.js';
import { blockCommitments, signFileManifest } from '../crypto/secure-transfer.js';
import { groupSealer, SecureSender } from '../crypto/guard.js';
import { inspectManifest, type CipherName } from '../crypto/manifest.js';
import type { MacSuite } from '../crypto/packet-auth.js';
import type { SigningKey } from '../crypto/keys.js';

/** A manifest's default validity: 30 days from its creation. */
const DEFAULT_VALIDITY_S = 30 * 86400;

export interface SendSecurity {
  /**
   * Signs the manifest for the file (with `product`, `sequence`, ...), unless `manifest` is
   * given, and the digest batches (`digests`).
   */
  signingKey?: SigningKey;
  /** A manifest signed offline (`iotupd manifest sign`) for exactly this object: sent as it is. */
  manifest?: Uint8Array;
  product?: string;
  /** 1..2^64-1. */
  sequence?: bigint;
  /** Default: the sequence number in decimal. */
  version?: string;
  /** Unix seconds. Default: when the manifest is signed (once the file is hashed). */
  created?: number;
  /** Unix seconds. Default: 30 days after `created`. */
  expires?: number;
  /** Staged rollout: the share of devices that install, in basis points (1..10000). */
  rolloutBasisPoints?: number;
  /** 32 bytes: tag every packet with it (and encrypt with `encrypt`). */
  groupKey?: Uint8Array;
  encrypt?: boolean;
  /** With `encrypt`. Default chacha20-poly1305: on WebAssembly it costs less per packet than AES-256-GCM through node:crypto (docs/security.md "Cost"). */
  cipher?: CipherName;
  /** The tag without `encrypt`. Default poly1305 (docs/security.md "Choice"). */
  mac?: MacSuite;
  /** Sign digest batches of the datagrams ahead of them (stops insiders; needs signingKey). */
  digests?: boolean;
}

/** What sendFile takes from a SendSecurity. */
export interface SendSecurityPlan {
  /** The FountainSender's sealer; none when data packets go untagged (digests without encryption). */
  sealer?: Sealer;
  /** createFileSender's `observe`: the block commitments of the manifest, from the one hashing pass. */
  observe?: (oti: Oti) => (chunk: Uint8Array) => void;
  /** The security stage: signs the manifest (or checks the given one) and adds MANIFEST / SIGNATURE packets. */
  stage: SendStage;
}

const CIPHERS: readonly CipherName[] = ['chacha20-poly1305', 'aes-256-gcm'];
const MACS: readonly MacSuite[] = ['poly1305', 'mac'];

function unixSeconds(name: string, t: number | undefined): void {
  if (t !== undefined && !(Number.isSafeInteger(t) && t >= 0)) throw new UsageError(`${name} must be unix seconds (a non-negative integer)`);
}

/**
 * Validates `s` (UsageError for options that do not fit together or out of range, SecurityError
 * for a group key of the wrong length, DecodeError for a manifest that does not parse) and plans
 * the pipeline.
 */
export function planSendSecurity(s: SendSecurity): SendSecurityPlan {
  const { signingKey, manifest, groupKey } = s;
  if (signingKey === undefined && manifest === undefined) {
    if (groupKey !== undefined || s.encrypt || s.digests || s.mac !== undefined) throw new UsageError('groupKey, mac, encrypt and digests need a signed manifest: signingKey or manifest');
    throw new UsageError('a secure transfer needs a signingKey or a signed manifest');
  }
  if (s.encrypt && groupKey === undefined) throw new UsageError('encrypt needs groupKey');
  if (s.digests && signingKey === undefined) throw new UsageError('digests needs signingKey (the sender signs the batches)');
  const cipher = s.cipher ?? 'chacha20-poly1305';
  if (!CIPHERS.includes(cipher)) throw new UsageError('cipher must be aes-256-gcm or chacha20-poly1305');
  const mac = s.mac ?? 'poly1305';
  if (!MACS.includes(mac)) throw new UsageError('mac must be poly1305 or mac (HMAC-SHA256)');
  // A given manifest is parsed now (DecodeError), not once the file is hashed; its signature is the devices' to check.
  const given = manifest === undefined ? undefined : inspectManifest(manifest).fields;
  if (given) {
    if (s.digests && !given.symbolDigests) throw new UsageError('the manifest was signed without digests');
  } else {
    if (s.product === undefined || s.sequence === undefined) throw new UsageError('signingKey needs product and sequence');
    if (s.sequence < 1n || s.sequence >= 2n ** 64n) throw new UsageError('sequence must be an integer 1..2^64-1');
    const bp = s.rolloutBasisPoints;
    if (bp !== undefined && !(Number.isInteger(bp) && bp >= 1 && bp <= 10000)) throw new UsageError('rolloutBasisPoints must be an integer from 1 to 10000');
    unixSeconds('created', s.created);
    unixSeconds('expires', s.expires);
  }
  const sealer = groupKey ? groupSealer(groupKey, s.encrypt ? cipher : mac) : undefined;
  // With signed digests (and no encryption) a data packet is authenticated by its digest: the
  // group-key MAC would add nothing, so only MANIFEST and SIGNATURE packets carry it.
  const dataSealer = s.digests && !s.encrypt ? undefined : sealer;
  const commitments = manifest === undefined ? blockCommitments() : undefined;
  const stage: SendStage = (inner, sender) => {
    let signed: Uint8Array;
    if (manifest !== undefined && given) {
      if (!equalBytes(given.objectId, sender.objectId)) {
        throw new UsageError(`the manifest is for object ${toHex(given.objectId)}, this file and these options give ${toHex(sender.objectId)} (same symbol size / block symbols?)`);
      }
      signed = manifest;
    } else {
      const created = s.created ?? Math.floor(Date.now() / 1000);
      signed = signFileManifest(sender, (commitments as NonNullable<typeof commitments>).blockHashes(), signingKey as SigningKey, {
        product: s.product as string,
        sequence: s.sequence as bigint,
        version: s.version ?? (s.sequence as bigint).toString(),
        created,
        expires: s.expires ?? created + DEFAULT_VALIDITY_S,
        ...(groupKey && s.encrypt ? { groupKey, cipher } : {}),
        ...(s.digests ? { digests: true } : {}),
        ...(s.rolloutBasisPoints !== undefined ? { rolloutBasisPoints: s.rolloutBasisPoints } : {}),
      });
    }
    return new SecureSender({
      inner,
      objectId: sender.objectId,
      manifest: signed,
      ...(sealer ? { sealer } : {}),
      ...(signingKey ? { signingKey } : {}),
      digests: s.digests === true,
    });
  };
  return {
    ...(dataSealer ? { sealer: dataSealer } : {}),
    ...(commitments ? { observe: commitments.observe } : {}),
    stage,
  };
}
