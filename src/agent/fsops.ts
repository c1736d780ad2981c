// The file operations every install step is built from. Each one leaves the old or the new
// content under its name, never a torn file: write a temporary file, fsync it, rename it over the
// name, fsync the directory (POSIX rename(2) is atomic; the directory fsync makes the rename
// durable). Each is idempotent, so a step re-run after a crash is safe.
import { createHash } from 'node:crypto';
import { closeSync, constants, copyFileSync, fsyncSync, linkSync, lstatSync, openSync, renameSync, rmSync, unlinkSync, writeSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { readChunks, storageError } from '../fsutil/index.js';
import type { FaultInjector } from './fault.js';

export function fsyncDir(dir: string): void {
  const fd = openSync(dir, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

function fsyncFile(path: string): void {
  const fd = openSync(path, 'r+');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

export function tempName(path: string): string {
  return join(dirname(path), `.${basename(path)}.iotupd-tmp`);
}

/** Replace `path` with `text` atomically; fault step `step` comes first. */
export function writeFileAtomic(path: string, text: string | Uint8Array, faults: FaultInjector, step: string): void {
  faults.step(step);
  const tmp = tempName(path);
  try {
    const fd = openSync(tmp, 'w', 0o644);
    try {
      if (typeof text === 'string') writeSync(fd, text);
      else writeSync(fd, text);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, path);
    fsyncDir(dirname(path));
  } catch (err) {
    removeQuietly(tmp);
    throw storageError(err, 'write', path);
  }
}

/**
 * Copy `src` to `dst` atomically. Two fault steps: `step` before the copy starts and `step:tmp`
 * once the full copy is on disk under its temporary name (a kill there leaves only a stray
 * temporary file, which the next attempt overwrites).
 */
export function copyFileAtomic(src: string, dst: string, faults: FaultInjector, step: string): void {
  faults.step(step);
  const tmp = tempName(dst);
  try {
    removeQuietly(tmp);
    copyFileSync(src, tmp, constants.COPYFILE_EXCL);
    fsyncFile(tmp);
    faults.step(`${step}:tmp`);
    renameSync(tmp, dst);
    fsyncDir(dirname(dst));
  } catch (err) {
    removeQuietly(tmp);
    throw storageError(err, 'write', dst);
  }
}

/** rename(2) + directory fsync. */
export function renameDurable(from: string, to: string, faults: FaultInjector, step: string): void {
  faults.step(step);
  try {
    renameSync(from, to);
    fsyncDir(dirname(to));
  } catch (err) {
    throw storageError(err, 'rename', from);
  }
}

/** A second name for `existing` (hard link), durable. */
export function linkDurable(existing: string, name: string, faults: FaultInjector, step: string): void {
  faults.step(step);
  try {
    linkSync(existing, name);
    fsyncDir(dirname(name));
  } catch (err) {
    throw storageError(err, 'link', name);
  }
}

/** Remove a file or directory tree if present, durable. */
export function removeDurable(path: string, faults: FaultInjector, step: string): void {
  if (!exists(path)) return;
  faults.step(step);
  try {
    rmSync(path, { recursive: true, force: true });
    fsyncDir(dirname(path));
  } catch (err) {
    throw storageError(err, 'remove', path);
  }
}

export function removeQuietly(path: string): void {
  try {
    unlinkSync(path);
  } catch {
    // absent already
  }
}

export function exists(path: string): boolean {
  try {
    lstatSync(path);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw storageError(err, 'read', path);
  }
}

/** SHA-256 and size of a file, streamed. */
export async function hashFile(path: string, signal?: AbortSignal): Promise<{ hash: Uint8Array; size: number }> {
  const h = createHash('sha256');
  let size = 0;
  await readChunks(
    path,
    (chunk) => {
      h.update(chunk);
      size += chunk.length;
    },
    signal ? { signal } : {},
  );
  return { hash: new Uint8Array(h.digest()), size };
}
