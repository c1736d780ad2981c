/**
 * Small file helpers shared by the transfer formats: streaming BLAKE3 of a file, atomic
 * replacement of small files, and one-line StorageErrors for the errno values users meet.
 */
import { closeSync, fsyncSync, openSync, renameSync, unlinkSync, writeSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { blake3 } from '@noble/hashes/blake3.js';
import { IotupdError, StorageError } from '../errors.js';

const REASONS: Record<string, string> = {
  ENOSPC: 'no space left on the device',
  EDQUOT: 'disk quota exceeded',
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  EROFS: 'read-only file system',
  ENOENT: 'no such file or directory',
  ENOTDIR: 'a path component is not a directory',
  EISDIR: 'is a directory',
  EIO: 'input/output error',
  EFBIG: 'file too large for this file system',
  EMFILE: 'too many open files',
};

/** Turns a Node fs error into a StorageError: "cannot write OUT: no space left on the device". */
export function storageError(err: unknown, action: string, path: string): IotupdError {
  if (err instanceof IotupdError) return err;
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  const reason = (code && REASONS[code]) ?? (err as Error | undefined)?.message ?? String(err);
  const full = code === 'ENOSPC' || code === 'EDQUOT';
  return new StorageError(`cannot ${action} ${path}: ${reason}`, full ? 'ERR_STORAGE_FULL' : 'ERR_STORAGE', { cause: err });
}

/** BLAKE3 of a whole file, read in 1 MiB pieces (memory stays flat for any size). */
export async function hashFile(path: string, signal?: AbortSignal): Promise<Uint8Array> {
  let fh;
  try {
    fh = await open(path, 'r');
  } catch (err) {
    throw storageError(err, 'read', path);
  }
  try {
    const h = blake3.create();
    const buf = new Uint8Array(1 << 20);
    let pos = 0;
    for (;;) {
      if (signal?.aborted) throw signal.reason instanceof Error ? signal.reason : new IotupdError('ERR_ABORTED', 'aborted');
      const { bytesRead } = await fh.read(buf, 0, buf.length, pos);
      if (bytesRead === 0) break;
      h.update(buf.subarray(0, bytesRead));
      pos += bytesRead;
    }
    return h.digest();
  } catch (err) {
    throw storageError(err, 'read', path);
  } finally {
    await fh.close();
  }
}

/**
 * Replace `path` with `bytes` atomically: write a temp file beside it, fsync, rename. A crash
 * leaves the old or the new content, never a torn file.
 */
export function writeFileAtomicSync(path: string, bytes: Uint8Array): void {
  const tmp = `${path}.tmp-${process.pid}`;
  try {
    const fd = openSync(tmp, 'w', 0o644);
    try {
      let off = 0;
      while (off < bytes.length) off += writeSync(fd, bytes, off, bytes.length - off);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, path);
  } catch (err) {
    try {
      unlinkSync(tmp);
    } catch {
      // already gone
    }
    throw storageError(err, 'write', path);
  }
}

/** unlink that ignores a missing file. */
export function removeIfExists(path: string): void {
  try {
    unlinkSync(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw storageError(err, 'remove', path);
  }
}

export function hex(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.length).toString('hex');
}
