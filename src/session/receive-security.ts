// The receiving side of a signed transfer (docs/security.md): a guard in front of the fountain
// receiver that lets nothing through before a manifest signed under the device's trust root is
// verified, checks every block against the manifest's commitments before it is written, and, once
// the object is in place, checks it against the manifest and records the install (anti-rollback).
import { statSync } from 'node:fs';
import { SecurityError, StorageError, UsageError } from '../errors.js';
import {
  DeviceState,
  equalBytes,
  loadGroupKey,
  loadPublicKey,
  ReceiveGuard,
  toHex,
  TrustStore,
  type CipherName,
  type GuardStats,
  type MacSuite,
  type Manifest,
  type ReceiveGuardOptions,
} from '../crypto/index.js';
import { HashAlgorithm } from '../wire/fountain.js';

/** What a receiving device trusts and remembers. */
export interface ReceiveSecurity {
  /** Pinned root or signing keys: public key files, or a TrustStore built by the caller. */
  trust: TrustStore | readonly string[];
  /** This device's product: manifests for another product are refused. */
  product: string;
  /** Anti-rollback state (highest installed sequence, time floor); created when missing. */
  stateDir: string;
  /** Group key (or its file): every packet must then carry a valid tag. */
  groupKey?: Uint8Array | string;
  /** The tag expected on packets that are not encrypted (default poly1305, as senders use). */
  mac?: MacSuite;
  /** The cipher expected on encrypted packets (default chacha20-poly1305). */
  cipher?: CipherName;
  /** Refuse packets that are not encrypted (needs groupKey). */
  requireEncryption?: boolean;
  /** Require signed digest batches even when the manifest does not ask for them. */
  requireDigests?: boolean;
  /** Refuse a sequence more than this far past the installed one. */
  maxSequenceJump?: bigint;
  /**
   * The device's trusted clock in Unix seconds, or false when it has none: expiry is then judged
   * against the state's time floor (the newest `created` of any installed manifest). Default: Date.now.
   */
  clock?: (() => number) | false;
  /** This device's identity for staged rollouts (inRollout). */
  deviceId?: Uint8Array;
  /**
   * Record the install in `stateDir` when the object is complete and matches the manifest
   * (default true). A device agent that installs, switches and health-checks first passes false
   * and records the install itself once the new version is proven.
   */
  recordInstall?: boolean;
}

/** The security stage of one receive. */
export interface ReceiveSecurityStage {
  readonly guard: ReceiveGuard;
  readonly state: DeviceState;
  /** In front of FountainReceiver.push: the datagram to use (decrypted), or null to drop it. */
  filter(datagram: Uint8Array): Uint8Array | null;
  /** The manifest's commitment check of one decoded block, before it is written. */
  checkBlock(sbn: number, data: Uint8Array): boolean;
  /**
   * After the object is in place: its verified digest and size against the signed manifest, then
   * (recordInstall) the install recorded. Returns the manifest.
   */
  commit(outPath: string, verified: { hashAlgorithm: number; hash: Uint8Array }): Manifest;
  summary(): SecuritySummary;
}

export interface SecuritySummary {
  manifest: { product: string; sequence: string; version: string; signer: string } | null;
  drops: GuardStats['drops'];
  manifestErrors: GuardStats['manifestErrors'];
  blocksVerified: number;
  blocksRejected: number;
}

/** Build the security stage of a receive; `onManifest` sees the manifest once it is verified. */
export function receiveSecurity(opts: ReceiveSecurity, onManifest?: (m: Manifest) => void): ReceiveSecurityStage {
  if (!opts.product) throw new UsageError('security.product is required');
  if (!opts.stateDir) throw new UsageError('security.stateDir is required');
  let trust: TrustStore;
  if (opts.trust instanceof TrustStore) trust = opts.trust;
  else {
    if (opts.trust.length === 0) throw new UsageError('security.trust needs at least one public key file');
    trust = new TrustStore(opts.trust.map((f) => loadPublicKey(f)));
  }
  const state = DeviceState.open(opts.stateDir, opts.product);
  const g: ReceiveGuardOptions = {
    trust,
    policy: state.policy(opts.maxSequenceJump !== undefined ? { maxSequenceJump: opts.maxSequenceJump } : {}),
    cipher: opts.cipher ?? 'chacha20-poly1305',
    macSuite: opts.mac ?? 'poly1305',
    // The network driver hands over a fresh buffer per datagram and never reads it again.
    decryptInPlace: true,
  };
  if (opts.groupKey !== undefined) g.groupKey = typeof opts.groupKey === 'string' ? loadGroupKey(opts.groupKey) : opts.groupKey;
  if (opts.requireEncryption) {
    if (!g.groupKey) throw new UsageError('security.requireEncryption needs a groupKey');
    g.requireEncryption = true;
  }
  if (opts.requireDigests) g.requireDigests = true;
  if (opts.deviceId) g.deviceId = opts.deviceId;
  const guard = new ReceiveGuard(g);
  const clock = opts.clock === false ? undefined : (opts.clock ?? (() => Math.floor(Date.now() / 1000)));
  let announced = false;
  return {
    guard,
    state,
    filter(datagram) {
      const r = guard.filter(datagram, clock?.());
      if (r.kind === 'deliver') return r.datagram;
      if (r.kind === 'manifest' && !announced) {
        announced = true;
        onManifest?.(r.manifest);
      }
      return null;
    },
    checkBlock: (sbn, data) => guard.checkBlock(sbn, data),
    commit(outPath, verified) {
      const m = guard.manifest;
      if (!m) throw new SecurityError('no verified manifest', 'ERR_NO_MANIFEST');
      // The receiver hashed every byte it wrote and renamed the file only when that digest
      // matched the description's; here the description's digest and the file's size must be the
      // signed ones (the guard already drops descriptions that disagree with the manifest).
      let size: number;
      try {
        size = statSync(outPath).size;
      } catch (err) {
        throw new StorageError(`cannot read ${outPath}: ${(err as Error).message}`);
      }
      if (verified.hashAlgorithm !== HashAlgorithm.SHA256 || size !== m.size || !equalBytes(verified.hash, m.objectHash)) {
        throw new SecurityError(`${outPath} does not match the signed manifest after writing`, 'ERR_MISMATCH');
      }
      if (opts.recordInstall !== false) state.commit(m);
      return m;
    },
    summary() {
      const m = guard.manifest;
      return {
        manifest: m ? { product: m.product, sequence: m.sequence.toString(), version: m.version, signer: toHex(m.signerKeyId) } : null,
        drops: guard.stats.drops,
        manifestErrors: guard.stats.manifestErrors,
        blocksVerified: guard.stats.blocksVerified,
        blocksRejected: guard.stats.blocksRejected,
      };
    },
  };
}
