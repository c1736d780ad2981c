// Security options of `iotupd send` / `iotupd recv` (fountain format), kept here so the transfer
// CLI only spreads the option tables in and calls two functions. Scheme: docs/security.md.
import { readFileSync, statSync } from 'node:fs';
import { HashAlgorithm } from '../wire/fountain.js';
import { SecurityError, StorageError, UsageError } from '../errors.js';
import { deviceGuard, equalBytes, fromHex, loadGroupKey, loadSigningKey, toHex, type MacSuite, type Manifest, type ReceiveGuard } from '../crypto/index.js';
import type { SendSecurity } from '../session/send-security.js';
import type { DeviceState } from '../crypto/index.js';
import { numberOption } from './command.js';
import { parseTime } from './commands/keygen.js';

type Values = Record<string, string | boolean | string[] | undefined>;

/** --mac: the group-key tag of packets that are not encrypted. Poly1305 by default (bench:crypto). */
function macSuiteOf(v: Values): MacSuite {
  const m = str(v, 'mac') ?? 'poly1305';
  if (m === 'poly1305') return 'poly1305';
  if (m === 'hmac') return 'mac';
  throw new UsageError('--mac must be poly1305 or hmac');
}

function str(v: Values, k: string): string | undefined {
  const x = v[k];
  return typeof x === 'string' ? x : undefined;
}

function cipherOf(v: Values): 'aes-256-gcm' | 'chacha20-poly1305' {
  // ChaCha20-Poly1305 by default: on WebAssembly it costs a third of AES-256-GCM through
  // node:crypto per packet (bench:crypto), and devices without AES instructions need no tables.
  const c = str(v, 'cipher') ?? 'chacha20-poly1305';
  if (c !== 'aes-256-gcm' && c !== 'chacha20-poly1305') throw new UsageError('--cipher must be aes-256-gcm or chacha20-poly1305');
  return c;
}

/**
 * The send-side security options as the library's SendSecurity (src/session/send-security.ts,
 * which validates them and builds the pipeline's security stage): key and manifest files read,
 * sequence, time and percentage parsed. undefined when no security option was given (plain transfer).
 */
export function planSecureSend(v: Values): SendSecurity | undefined {
  const keyFile = str(v, 'key');
  const manifestFile = str(v, 'manifest');
  const gkFile = str(v, 'group-key');
  // The same rules as planSendSecurity's, in terms of the flags, checked before any file is read.
  if (keyFile === undefined && manifestFile === undefined) {
    if (gkFile !== undefined || v.encrypt || v.digests || v.mac !== undefined) throw new UsageError('--group-key, --mac, --encrypt and --digests need a signed manifest: --key or --manifest');
    return undefined;
  }
  if (v.encrypt && gkFile === undefined) throw new UsageError('--encrypt needs --group-key');
  if (v.digests && keyFile === undefined) throw new UsageError('--digests needs --key (the sender signs the batches)');
  const s: SendSecurity = { cipher: cipherOf(v) };
  if (gkFile !== undefined) {
    s.groupKey = loadGroupKey(gkFile);
    if (!v.encrypt) s.mac = macSuiteOf(v);
  }
  if (v.encrypt) s.encrypt = true;
  if (v.digests) s.digests = true;
  if (keyFile !== undefined) s.signingKey = loadSigningKey(keyFile);
  if (manifestFile !== undefined) {
    try {
      s.manifest = new Uint8Array(readFileSync(manifestFile));
    } catch (err) {
      throw new StorageError(`cannot read ${manifestFile}: ${(err as Error).message}`);
    }
    return s;
  }
  const product = str(v, 'product');
  const seq = str(v, 'sequence');
  if (product === undefined || seq === undefined) throw new UsageError('--key needs --product and --sequence');
  if (!/^\d{1,20}$/.test(seq) || BigInt(seq) < 1n || BigInt(seq) >= 2n ** 64n) throw new UsageError('--sequence must be an integer 1..2^64-1');
  s.product = product;
  s.sequence = BigInt(seq);
  s.version = str(v, 'version') ?? seq;
  const expires = str(v, 'expires');
  if (expires !== undefined) s.expires = parseTime('expires', expires, 0);
  const rollout = str(v, 'rollout');
  if (rollout !== undefined) s.rolloutBasisPoints = Math.round(numberOption('rollout', rollout, 100, 0.01, 100) * 100);
  return s;
}

export interface SecureRecvPlan {
  guard: ReceiveGuard;
  state: DeviceState;
  /** Put in front of FountainReceiver.push: null = drop. */
  filter(datagram: Uint8Array): Uint8Array | null;
  /** FountainReceiver `checkBlock` (per-block commitment check before writing). */
  checkBlock(sbn: number, data: Uint8Array): boolean;
  /**
   * After the object is in place: check the digest the receiver verified over the bytes it wrote
   * (and the file's size) against the manifest, then record the install.
   */
  commit(outPath: string, verified: { hashAlgorithm: number; hash: Uint8Array }): Manifest;
  summary(): Record<string, unknown>;
}

export function planSecureRecv(v: Values): SecureRecvPlan | undefined {
  const trust = v.trust;
  const trustFiles = Array.isArray(trust) ? trust : [];
  if (trustFiles.length === 0) {
    for (const k of ['group-key', 'encrypt', 'mac', 'state', 'product', 'max-jump', 'no-clock', 'device-id']) {
      if (v[k] !== undefined) throw new UsageError(`--${k} needs --trust KEY.pub`);
    }
    return undefined;
  }
  const product = str(v, 'product');
  const stateDir = str(v, 'state');
  if (product === undefined || stateDir === undefined) throw new UsageError('--trust needs --product NAME and --state DIR');
  const jump = str(v, 'max-jump');
  if (jump !== undefined && !/^\d{1,20}$/.test(jump)) throw new UsageError('--max-jump must be an integer');
  const deviceId = str(v, 'device-id');
  const gk = str(v, 'group-key');
  const { guard, state } = deviceGuard({
    trustFiles,
    stateDir,
    product,
    cipher: cipherOf(v),
    macSuite: macSuiteOf(v),
    // The receive driver gets a fresh buffer per datagram and does not reuse it after the filter.
    decryptInPlace: true,
    ...(gk !== undefined ? { groupKeyFile: gk } : {}),
    ...(v.encrypt ? { requireEncryption: true } : {}),
    ...(jump !== undefined ? { maxSequenceJump: BigInt(jump) } : {}),
    ...(deviceId !== undefined ? { deviceId: fromHex(deviceId) } : {}),
  });
  const noClock = v['no-clock'] === true;
  return {
    guard,
    state,
    filter(datagram) {
      const r = guard.filter(datagram, noClock ? undefined : Math.floor(Date.now() / 1000));
      return r.kind === 'deliver' ? r.datagram : null;
    },
    checkBlock: (sbn, data) => guard.checkBlock(sbn, data),
    commit(outPath, verified) {
      const m = guard.manifest;
      if (!m) throw new SecurityError('no verified manifest', 'ERR_NO_MANIFEST');
      // The receiver hashed every byte it wrote and renamed the file only when that digest
      // matched the description's; here the description's digest and the file's size must be the
      // signed ones. (The guard already drops descriptions that disagree with the manifest.)
      let size: number;
      try {
        size = statSync(outPath).size;
      } catch (err) {
        throw new StorageError(`cannot read ${outPath}: ${(err as Error).message}`);
      }
      if (verified.hashAlgorithm !== HashAlgorithm.SHA256 || size !== m.size || !equalBytes(verified.hash, m.objectHash)) {
        throw new SecurityError(`${outPath} does not match the signed manifest after writing`, 'ERR_MISMATCH');
      }
      state.commit(m);
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
