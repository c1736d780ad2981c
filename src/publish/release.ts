// Releases as the publisher finds them on disk (docs/publish.md, "Releases on disk"):
//
//   a release directory        DIR/manifest (signed manifest), DIR/image, optional DIR/halt
//   a directory of releases    every sub-directory that holds a `manifest` is a release
//   a config file (JSON)       { "releases": [ { "manifest": P, "image": P, "halt"?: "stop" | "rollback" } ] }
//                              paths relative to the config file's directory
//
// A `halt` file (its first word "rollback" for a rollback, anything else just stops) turns the
// release into a HALT: its data is no longer served, and signed HALT beacons replace its ANNOUNCEs.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { dirname, join, resolve } from 'node:path';
import { equalBytes, toHex } from '../crypto/bytes.js';
import { encodeManifestBody, inspectManifest, verifyManifest, type ManifestFields } from '../crypto/manifest.js';
import type { TrustStore } from '../crypto/trust.js';
import { IotupdError, StorageError, UsageError } from '../errors.js';
import { readChunks } from '../fsutil/index.js';

export type HaltMode = 'stop' | 'rollback';

export interface Release {
  /** Where it was loaded from (directory or config entry), for messages. */
  source: string;
  imagePath: string;
  manifestBytes: Uint8Array;
  /** The manifest's fields (verified when the publisher has a trust store, else as signed). */
  fields: ManifestFields;
  /** SHA-256 of the signed manifest body: the release's identity on the wire. */
  manifestId: Uint8Array;
  signerKeyId: Uint8Array;
  halt?: HaltMode;
}

export const MANIFEST_FILE = 'manifest';
export const IMAGE_FILE = 'image';
export const HALT_FILE = 'halt';

function readBytes(path: string): Uint8Array {
  try {
    return new Uint8Array(readFileSync(path));
  } catch (err) {
    throw new StorageError(`cannot read ${path}: ${(err as Error).message}`, 'ERR_STORAGE', { cause: err });
  }
}

function haltMode(text: string): HaltMode {
  return text.trim().split(/\s+/)[0]?.toLowerCase() === 'rollback' ? 'rollback' : 'stop';
}

/**
 * The manifest's identity without a trust store: its body is the tail of the envelope
 * (src/crypto/manifest.ts: nothing may follow it) and re-encodes canonically from its fields.
 */
function manifestIdentity(bytes: Uint8Array, source: string): { fields: ManifestFields; manifestId: Uint8Array; signerKeyId: Uint8Array } {
  let view;
  try {
    view = inspectManifest(bytes);
  } catch (err) {
    throw new UsageError(`${source}: not a signed manifest (${(err as Error).message})`, 'ERR_RELEASE');
  }
  const body = encodeManifestBody(view.fields);
  if (body.length > bytes.length || !equalBytes(bytes.subarray(bytes.length - body.length), body)) {
    throw new UsageError(`${source}: manifest body is not in canonical form`, 'ERR_RELEASE');
  }
  return { fields: view.fields, manifestId: new Uint8Array(createHash('sha256').update(body).digest()), signerKeyId: view.signerKeyId.slice() };
}

export interface LoadOptions {
  /** Verify each manifest as a device would (chain to these roots, signature, expiry). */
  trust?: TrustStore;
  /** Unix seconds, for the expiry check with `trust` (default: now). */
  now?: number;
}

/** Read a release from its manifest and image paths. The image is checked by size only here (see checkImage). */
export function loadReleaseFiles(manifestPath: string, imagePath: string, halt: HaltMode | undefined, source: string, opts: LoadOptions = {}): Release {
  const manifestBytes = readBytes(manifestPath);
  let id = manifestIdentity(manifestBytes, source);
  if (opts.trust) {
    try {
      const m = verifyManifest(manifestBytes, opts.trust, { product: id.fields.product, installedSequence: 0n }, opts.now ?? Math.floor(Date.now() / 1000));
      id = { fields: m, manifestId: m.manifestId, signerKeyId: m.signerKeyId };
    } catch (err) {
      if (err instanceof IotupdError) throw new UsageError(`${source}: devices would refuse this manifest: ${err.message}`, 'ERR_RELEASE');
      throw err;
    }
  }
  if (halt === undefined) {
    let size: number;
    try {
      size = statSync(imagePath).size;
    } catch (err) {
      throw new StorageError(`${source}: cannot read image ${imagePath}: ${(err as Error).message}`, 'ERR_STORAGE', { cause: err });
    }
    if (size !== id.fields.size) throw new UsageError(`${source}: image is ${size} bytes, the manifest says ${id.fields.size}`, 'ERR_RELEASE');
  }
  const r: Release = { source, imagePath, manifestBytes, fields: id.fields, manifestId: id.manifestId, signerKeyId: id.signerKeyId };
  if (halt) r.halt = halt;
  return r;
}

/** A release directory: DIR/manifest, DIR/image, optional DIR/halt. */
export function loadReleaseDir(dir: string, opts: LoadOptions = {}): Release {
  let halt: HaltMode | undefined;
  try {
    halt = haltMode(readFileSync(join(dir, HALT_FILE), 'utf8'));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw new StorageError(`cannot read ${join(dir, HALT_FILE)}: ${(err as Error).message}`);
  }
  return loadReleaseFiles(join(dir, MANIFEST_FILE), join(dir, IMAGE_FILE), halt, dir, opts);
}

export interface LoadResult {
  releases: Release[];
  /** Releases that could not be loaded, each with its reason (the others still load). */
  errors: { source: string; code: string; message: string }[];
}

function collect(load: () => Release, source: string, out: LoadResult): void {
  try {
    out.releases.push(load());
  } catch (err) {
    if (!(err instanceof IotupdError)) throw err;
    out.errors.push({ source, code: err.code, message: err.message });
  }
}

/** Every sub-directory of `dir` that holds a manifest. */
export function loadReleasesDir(dir: string, opts: LoadOptions = {}): LoadResult {
  let names: string[];
  try {
    names = readdirSync(dir, { withFileTypes: true })
      .filter((e) => e.isDirectory() && !e.name.startsWith('.'))
      .map((e) => e.name)
      .sort();
  } catch (err) {
    throw new StorageError(`cannot read releases directory ${dir}: ${(err as Error).message}`, 'ERR_STORAGE', { cause: err });
  }
  const out: LoadResult = { releases: [], errors: [] };
  for (const name of names) {
    const sub = join(dir, name);
    try {
      statSync(join(sub, MANIFEST_FILE));
    } catch {
      continue; // not (yet) a release: e.g. a directory being filled
    }
    collect(() => loadReleaseDir(sub, opts), sub, out);
  }
  return out;
}

/** A JSON config file listing releases. A config that does not parse is an error as a whole. */
export function loadReleasesConfig(file: string, opts: LoadOptions = {}): LoadResult {
  let doc: unknown;
  try {
    doc = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new UsageError(`${file}: cannot read the releases config: ${(err as Error).message}`, 'ERR_CONFIG');
  }
  const list = (doc as { releases?: unknown } | null)?.releases;
  if (!Array.isArray(list)) throw new UsageError(`${file}: expected { "releases": [ ... ] }`, 'ERR_CONFIG');
  const base = dirname(resolve(file));
  const out: LoadResult = { releases: [], errors: [] };
  list.forEach((entry: unknown, i) => {
    const source = `${file}#releases[${i}]`;
    const e = entry as { manifest?: unknown; image?: unknown; halt?: unknown };
    if (typeof e?.manifest !== 'string' || (e.halt === undefined && typeof e.image !== 'string')) {
      out.errors.push({ source, code: 'ERR_CONFIG', message: `${source}: needs "manifest" and "image" paths` });
      return;
    }
    if (e.halt !== undefined && e.halt !== 'stop' && e.halt !== 'rollback') {
      out.errors.push({ source, code: 'ERR_CONFIG', message: `${source}: "halt" must be "stop" or "rollback"` });
      return;
    }
    const image = typeof e.image === 'string' ? resolve(base, e.image) : '';
    collect(() => loadReleaseFiles(resolve(base, e.manifest as string), image, e.halt as HaltMode | undefined, source, opts), source, out);
  });
  return out;
}

/** Full check of the image against the manifest's SHA-256 (streamed; large images take a while). */
export async function checkImage(r: Release, signal?: AbortSignal): Promise<void> {
  const h = createHash('sha256');
  let n = 0;
  await readChunks(
    r.imagePath,
    (chunk) => {
      h.update(chunk);
      n += chunk.length;
    },
    signal ? { signal } : {},
  );
  if (n !== r.fields.size || !equalBytes(new Uint8Array(h.digest()), r.fields.objectHash)) {
    throw new UsageError(`${r.source}: image ${r.imagePath} does not match the manifest's hash (release ${toHex(r.manifestId).slice(0, 16)})`, 'ERR_RELEASE');
  }
}
