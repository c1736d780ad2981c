// Security options of `iotupd send` / `iotupd recv` (fountain format), kept here so the transfer
// CLI only spreads the option tables in and calls two functions. Scheme: docs/security.md.
import { readFileSync } from 'node:fs';
import type { FountainSender } from '../transfer/index.js';
import type { Oti } from '../fec/index.js';
import { StorageError, UsageError } from '../errors.js';
import {
  blockCommitments,
  equalBytes,
  fromHex,
  groupSealer,
  inspectManifest,
  loadGroupKey,
  loadSigningKey,
  SecureSender,
  signFileManifest,
  toHex,
  type MacSuite,
  type Sealer,
} from '../crypto/index.js';
import type { ReceiveSecurity } from '../session/receive-security.js';
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

export interface SecureSendPlan {
  /** Goes into the FountainSender (createFileSender / sendFile `sealer`); the wrapper seals its own packets. */
  sealer?: Sealer;
  /** Run the FountainSender unpaced; the wrapper paces the whole stream. */
  innerRateBps: number;
  /** createFileSender's `observe`: the block commitments computed in the sender's hashing pass. */
  observe?: (oti: Oti) => (chunk: Uint8Array) => void;
  wrap(sender: FountainSender): SecureSender;
}

/** undefined when no security option was given (plain transfer). */
export function planSecureSend(v: Values, file: string, rateBps: number): SecureSendPlan | undefined {
  const keyFile = str(v, 'key');
  const manifestFile = str(v, 'manifest');
  const gkFile = str(v, 'group-key');
  if (keyFile === undefined && manifestFile === undefined) {
    if (gkFile !== undefined || v.encrypt || v.digests || v.mac !== undefined) throw new UsageError('--group-key, --mac, --encrypt and --digests need a signed manifest: --key or --manifest');
    return undefined;
  }
  if (v.encrypt && gkFile === undefined) throw new UsageError('--encrypt needs --group-key');
  if (v.digests && keyFile === undefined) throw new UsageError('--digests needs --key (the sender signs the batches)');
  const groupKey = gkFile === undefined ? undefined : loadGroupKey(gkFile);
  const cipher = cipherOf(v);
  const sealer = groupKey ? groupSealer(groupKey, v.encrypt ? cipher : macSuiteOf(v)) : undefined;
  // With signed digests (and no encryption) a data packet is authenticated by its digest: the
  // group-key MAC would add nothing, so only MANIFEST and SIGNATURE packets carry it.
  const innerSealer = v.digests && !v.encrypt ? undefined : sealer;
  const key = keyFile === undefined ? undefined : loadSigningKey(keyFile);
  const commitments = manifestFile === undefined ? blockCommitments() : undefined;
  return {
    ...(innerSealer ? { sealer: innerSealer } : {}),
    ...(commitments ? { observe: commitments.observe } : {}),
    innerRateBps: 1e15,
    wrap(sender) {
      let manifest: Uint8Array;
      if (manifestFile !== undefined) {
        try {
          manifest = new Uint8Array(readFileSync(manifestFile));
        } catch (err) {
          throw new StorageError(`cannot read ${manifestFile}: ${(err as Error).message}`);
        }
        const f = inspectManifest(manifest).fields;
        if (!equalBytes(f.objectId, sender.objectId)) {
          throw new UsageError(`${manifestFile} is for object ${toHex(f.objectId)}, this file and these options give ${toHex(sender.objectId)} (same --symbol-size / --block-symbols?)`);
        }
        if (v.digests && !f.symbolDigests) throw new UsageError(`${manifestFile} was signed without --digests`);
      } else {
        const product = str(v, 'product');
        const seq = str(v, 'sequence');
        if (product === undefined || seq === undefined) throw new UsageError('--key needs --product and --sequence');
        if (!/^\d{1,20}$/.test(seq) || BigInt(seq) < 1n || BigInt(seq) >= 2n ** 64n) throw new UsageError('--sequence must be an integer 1..2^64-1');
        const now = Math.floor(Date.now() / 1000);
        const rollout = str(v, 'rollout');
        manifest = signFileManifest(sender, (commitments as NonNullable<typeof commitments>).blockHashes(), key as NonNullable<typeof key>, {
          product,
          sequence: BigInt(seq),
          version: str(v, 'version') ?? seq,
          created: now,
          expires: parseTime('expires', str(v, 'expires'), now + 30 * 86400, now),
          ...(groupKey && v.encrypt ? { groupKey, cipher } : {}),
          ...(v.digests ? { digests: true } : {}),
          ...(rollout !== undefined ? { rolloutBasisPoints: Math.round(numberOption('rollout', rollout, 100, 0.01, 100) * 100) } : {}),
        });
      }
      return new SecureSender({
        inner: sender,
        objectId: sender.objectId,
        manifest,
        ...(sealer ? { sealer } : {}),
        ...(key ? { signingKey: key } : {}),
        digests: v.digests === true,
        rateBps,
      });
    },
  };
}

/** The sendFile options for a plan: unchanged rate without one; sealer, wrapper and unpaced inner with one. */
export function secureSendHooks(
  plan: SecureSendPlan | undefined,
  rateBps: number,
): { rateBps: number; sealer?: Sealer; observe?: (oti: Oti) => (chunk: Uint8Array) => void; wrap?: (s: FountainSender) => SecureSender } {
  if (!plan) return { rateBps };
  return { rateBps: plan.innerRateBps, ...(plan.sealer ? { sealer: plan.sealer } : {}), ...(plan.observe ? { observe: plan.observe } : {}), wrap: (s) => plan.wrap(s) };
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
