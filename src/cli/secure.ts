// Security options of `iotupd send` / `iotupd recv` (fountain format), kept here so the transfer
// CLI only spreads the option tables in and calls two functions. Scheme: docs/security.md.
import { readFileSync } from 'node:fs';
import { StorageError, UsageError } from '../errors.js';
import { fromHex, loadGroupKey, loadSigningKey, type MacSuite } from '../crypto/index.js';
import type { SendSecurity } from '../session/send-security.js';
import type { ReceiveSecurity } from '../session/receive-security.js';
import { numberOption } from './command.js';
import { parseTime } from './commands/keygen.js';

type Values = Record<string, string | boolean | string[] | undefined>;

/** --mac: the group-key tag of packets that are not encrypted. Poly1305 by default (docs/security.md "Choice", "Cost"). */
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
  // ChaCha20-Poly1305 by default: on WebAssembly it costs less per packet than AES-256-GCM
  // through node:crypto (docs/security.md "Cost", docs/decisions/0009-chacha20-poly1305-in-webassembly.md),
  // and devices without AES instructions need no tables.
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
    const given = ['group-key', 'mac', 'encrypt', 'digests', 'cipher', 'product', 'sequence', 'version', 'expires', 'rollout'].filter((k) => v[k] !== undefined);
    if (given.length > 0) throw new UsageError(`${given.map((k) => `--${k}`).join(', ')}: need a signed manifest (--key or --manifest)`);
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

/** The receive-side security options (docs/security.md) as the library's ReceiveSecurity. */
export function recvSecurityOptions(v: Values): ReceiveSecurity | undefined {
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
  if (deviceId !== undefined && !/^([0-9a-fA-F]{2})+$/.test(deviceId)) throw new UsageError('--device-id must be hex digits');
  const gk = str(v, 'group-key');
  if (v.encrypt && gk === undefined) throw new UsageError('--encrypt needs --group-key');
  return {
    trust: trustFiles,
    product,
    stateDir,
    cipher: cipherOf(v),
    mac: macSuiteOf(v),
    ...(gk !== undefined ? { groupKey: gk } : {}),
    ...(v.encrypt ? { requireEncryption: true } : {}),
    ...(jump !== undefined ? { maxSequenceJump: BigInt(jump) } : {}),
    ...(deviceId !== undefined ? { deviceId: fromHex(deviceId) } : {}),
    ...(v['no-clock'] === true ? { clock: false as const } : {}),
  };
}
