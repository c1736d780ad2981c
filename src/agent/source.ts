// Where releases come from. The agent asks a source for offers (signed manifests, not yet
// trusted) and, for a release it decides to take, for the image. The local bundle source is the
// install-from-a-file path (as RAUC and Mender install a bundle or artifact from a file); the
// multicast source (announce listener + fountain receiver) implements the same interface.
import { copyFileSync, constants, closeSync, fsyncSync, openSync, readFileSync, renameSync, statSync, unlinkSync } from 'node:fs';
import { storageError } from '../fsutil/index.js';
import { MAX_MANIFEST, type Manifest } from '../crypto/manifest.js';
import { StorageError } from '../errors.js';
import { fsyncDir, tempName } from './fsops.js';
import { dirname } from 'node:path';

export interface Offer {
  /** Signed manifest bytes exactly as received; the agent verifies them. */
  manifest: Uint8Array;
  /** Where it came from, for messages. */
  origin: string;
}

export interface ReleaseSource {
  offers(signal: AbortSignal): AsyncIterable<Offer>;
  /**
   * Leave the release's complete image at `dest` (a path in the agent's state directory), or
   * throw. The agent checks it against the verified manifest afterwards, so a source needs no
   * checks of its own beyond its transport's.
   */
  fetch(offer: Offer, manifest: Manifest, dest: string, signal: AbortSignal): Promise<void>;
}

/** A signed manifest file and an image file on local storage. */
export class BundleSource implements ReleaseSource {
  constructor(
    readonly manifestPath: string,
    readonly imagePath: string,
  ) {}

  async *offers(): AsyncIterable<Offer> {
    let size: number;
    try {
      size = statSync(this.manifestPath).size;
    } catch (err) {
      throw storageError(err, 'read', this.manifestPath);
    }
    if (size > MAX_MANIFEST) throw new StorageError(`${this.manifestPath} is larger than a manifest can be (${size} bytes)`, 'ERR_STORAGE');
    let bytes: Uint8Array;
    try {
      bytes = new Uint8Array(readFileSync(this.manifestPath));
    } catch (err) {
      throw storageError(err, 'read', this.manifestPath);
    }
    yield { manifest: bytes, origin: this.manifestPath };
  }

  async fetch(_offer: Offer, m: Manifest, dest: string): Promise<void> {
    let size: number;
    try {
      size = statSync(this.imagePath).size;
    } catch (err) {
      throw storageError(err, 'read', this.imagePath);
    }
    // Cap what is copied at the signed size (docs/security.md threat model 5).
    if (size !== m.size) throw new StorageError(`${this.imagePath} has ${size} bytes, the signed manifest says ${m.size}`, 'ERR_IMAGE_SIZE');
    const tmp = tempName(dest);
    try {
      try {
        unlinkSync(tmp);
      } catch {
        // no leftover
      }
      copyFileSync(this.imagePath, tmp, constants.COPYFILE_EXCL);
      const fd = openSync(tmp, 'r+');
      try {
        fsyncSync(fd);
      } finally {
        closeSync(fd);
      }
      renameSync(tmp, dest);
      fsyncDir(dirname(dest));
    } catch (err) {
      try {
        unlinkSync(tmp);
      } catch {
        // never created
      }
      throw storageError(err, 'write', dest);
    }
  }
}
