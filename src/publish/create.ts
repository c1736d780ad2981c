// Making a release directory for the publisher (docs/publish.md "Release directories"): the image
// (a hard link where the file system allows, else a copy) and its signed manifest, built as a
// hidden sibling and renamed into place so that a watching publisher never sees half a release.
// `iotupd release create` is a thin layer over createRelease.
import { chmodSync, copyFileSync, constants as fsConstants, existsSync, linkSync, mkdirSync, mkdtempSync, renameSync, rmSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { toHex } from '../crypto/bytes.js';
import type { SigningKey } from '../crypto/keys.js';
import type { CipherName, ManifestFields } from '../crypto/manifest.js';
import { blockCommitments, signFileManifest } from '../crypto/secure-transfer.js';
import { writeNewFile } from '../crypto/index.js';
import { StorageError, UsageError } from '../errors.js';
import { createFileSender } from '../transfer/index.js';
import { DEFAULT_SYMBOL_SIZE } from '../wire/fountain.js';
import { loadReleaseDir } from './release.js';

/** The release policy a device agent honours (docs/agent.md "Rollout rules"). */
export type ReleasePolicy = Pick<ManifestFields, 'rolloutBasisPoints' | 'deviceClasses' | 'hardware' | 'rolloutWaves' | 'activation' | 'switchAt'>;

export interface CreateReleaseOptions {
  image: string;
  key: SigningKey;
  product: string;
  sequence: bigint;
  /** The release directory to make; it must not exist. */
  out: string;
  /** Default: the sequence number. */
  version?: string;
  /** Unix seconds; default now. */
  created?: number;
  /** Unix seconds; default created + 30 days. */
  expires?: number;
  policy?: ReleasePolicy;
  symbolSize?: number;
  maxBlockSymbols?: number;
  groupKey?: Uint8Array;
  /** With groupKey: the data is encrypted with this cipher. */
  cipher?: CipherName;
  digests?: boolean;
  /** Always copy the image (never a hard link). */
  copy?: boolean;
}

export interface CreatedRelease {
  dir: string;
  product: string;
  sequence: string;
  version: string;
  manifestId: string;
  objectId: string;
  size: number;
  image: 'hard link' | 'copy';
  signer: string;
}

/**
 * Source symbols per block of a release's manifest unless given: the FEC layer's own cap
 * (otiFor, docs/raptorq.md "Deriving Z, N, Al"). The publisher sends with whatever partition the
 * manifest records, so this need not match `iotupd send`'s default.
 */
export const DEFAULT_RELEASE_BLOCK_SYMBOLS = 8192;

/** Sort and de-duplicate a policy list (the manifest stores them strictly ascending). */
export function policyList(items: readonly string[]): string[] {
  return [...new Set(items)].sort((a, b) => (Buffer.compare(Buffer.from(a), Buffer.from(b))));
}

/** What a signed release manifest is made of: the image, the signer and the release's fields. */
export type ReleaseManifestOptions = Omit<CreateReleaseOptions, 'out' | 'copy'>;

/**
 * Sign a release manifest for an image: one pass over the file gives the object's hash and the
 * per-block commitments (createFileSender's observe), then the manifest is signed over them with
 * the release's fields and policy. `iotupd manifest sign` and createRelease both sign here.
 */
export async function signReleaseManifest(o: ReleaseManifestOptions): Promise<{ manifest: Uint8Array; objectId: Uint8Array; version: string }> {
  if (o.sequence < 1n || o.sequence >= 2n ** 64n) throw new UsageError('the sequence must be an integer 1..2^64-1');
  const created = o.created ?? Math.floor(Date.now() / 1000);
  const expires = o.expires ?? created + 30 * 86400;
  if (expires <= created) throw new UsageError('the release must expire after it is created');
  const p = o.policy ?? {};
  if (p.rolloutBasisPoints !== undefined && p.rolloutWaves !== undefined) throw new UsageError('a rollout share and rollout waves exclude each other');
  if (p.activation && p.activation.notBefore >= expires) throw new UsageError('the activation window opens after the release expires');
  if (p.switchAt !== undefined && p.switchAt >= expires) throw new UsageError('the switch time is after the release expires');
  const commitments = blockCommitments();
  const sender = await createFileSender({
    file: o.image,
    observe: commitments.observe,
    symbolSize: o.symbolSize ?? DEFAULT_SYMBOL_SIZE,
    maxBlockSymbols: o.maxBlockSymbols ?? DEFAULT_RELEASE_BLOCK_SYMBOLS,
  });
  sender.close();
  const version = o.version ?? o.sequence.toString();
  const { rolloutBasisPoints, ...policy } = p;
  const manifest = signFileManifest(sender, commitments.blockHashes(), o.key, {
    product: o.product,
    sequence: o.sequence,
    version,
    created,
    expires,
    ...(o.groupKey && o.cipher ? { groupKey: o.groupKey, cipher: o.cipher } : {}),
    ...(o.digests ? { digests: true } : {}),
    ...(rolloutBasisPoints !== undefined ? { rolloutBasisPoints } : {}),
    ...(Object.keys(policy).length > 0 ? { policy } : {}),
  });
  return { manifest, objectId: sender.objectId, version };
}

export async function createRelease(o: CreateReleaseOptions): Promise<CreatedRelease> {
  const dir = resolve(o.out);
  if (existsSync(dir)) throw new UsageError(`${o.out} already exists (a release directory is never overwritten)`);
  if (!existsSync(o.image)) throw new UsageError(`image ${o.image} does not exist`);
  const { manifest, version } = await signReleaseManifest(o);

  const parent = dirname(dir);
  mkdirSync(parent, { recursive: true });
  // Built as a hidden sibling (the publisher skips dot-directories), then renamed into place.
  const tmp = mkdtempSync(join(parent, `.${basename(dir)}.partial-`));
  try {
    chmodSync(tmp, 0o755); // mkdtemp makes it 0700; the release itself is public data
    const img = join(tmp, 'image');
    let linked = false;
    if (!o.copy) {
      try {
        linkSync(o.image, img);
        linked = true;
      } catch {
        // another file system, or links not allowed: copy
      }
    }
    if (!linked) {
      try {
        copyFileSync(o.image, img, fsConstants.COPYFILE_FICLONE);
      } catch (err) {
        throw new StorageError(`cannot copy ${o.image}: ${(err as Error).message}`, 'ERR_STORAGE', { cause: err });
      }
    }
    writeNewFile(join(tmp, 'manifest'), manifest, 0o644);
    // What the publisher will read back: the same checks it makes (image size, canonical manifest).
    const r = loadReleaseDir(tmp);
    renameSync(tmp, dir);
    return {
      dir,
      product: o.product,
      sequence: o.sequence.toString(),
      version,
      manifestId: toHex(r.manifestId),
      objectId: toHex(r.fields.objectId),
      size: r.fields.size,
      image: linked ? 'hard link' : 'copy',
      signer: toHex(o.key.keyId),
    };
  } catch (err) {
    rmSync(tmp, { recursive: true, force: true });
    throw err;
  }
}
