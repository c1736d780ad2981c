/**
 * Small file helpers shared by the transfer formats: streaming reads and BLAKE3 of a file, atomic
 * replacement of small files, and one-line StorageErrors for the errno values users meet.
 */
import { closeSync, fsyncSync, mkdtempSync, openSync, renameSync, rmdirSync, statSync, unlinkSync, writeSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { open, type FileHandle } from 'node:fs/promises';
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

const CHUNK = 1 << 20;

/**
 * Reads the first `length` bytes of a file (all of it by default) in 1 MiB chunks and hands each
 * to `visit` in order: memory stays flat for any size. The next chunk is read by libuv's thread
 * pool while `visit` handles the current one, so reading and hashing overlap (figures in
 * docs/decisions/0004-encoders-prepared-in-slices.md). Errors are StorageErrors, a file shorter
 * than `length` among them; `signal` stops it between chunks.
 */
export async function readChunks(path: string, visit: (chunk: Uint8Array) => void, opts: { length?: number; signal?: AbortSignal } = {}): Promise<void> {
  let fh: FileHandle;
  try {
    fh = await open(path, 'r');
  } catch (err) {
    throw storageError(err, 'read', path);
  }
  const bufs = [new Uint8Array(CHUNK), new Uint8Array(CHUNK)];
  let pending: Promise<{ bytesRead: number }> | undefined;
  try {
    const total = opts.length ?? (await fh.stat()).size;
    const readAt = (i: number, pos: number) => fh.read(bufs[i] as Uint8Array, 0, Math.min(CHUNK, total - pos), pos);
    pending = total > 0 ? readAt(0, 0) : undefined;
    for (let pos = 0, i = 0; pos < total; i ^= 1) {
      if (opts.signal?.aborted) throw opts.signal.reason instanceof Error ? opts.signal.reason : new IotupdError('ERR_ABORTED', 'aborted');
      const { bytesRead } = await (pending as Promise<{ bytesRead: number }>);
      if (bytesRead === 0) throw new StorageError(`${path} is shorter than ${total} bytes`, 'ERR_STORAGE');
      const next = pos + bytesRead;
      pending = next < total ? readAt(i ^ 1, next) : undefined;
      visit((bufs[i] as Uint8Array).subarray(0, bytesRead));
      pos = next;
    }
  } catch (err) {
    throw storageError(err, 'read', path);
  } finally {
    // A read still in flight (visit threw, or the signal stopped us) ends before the file closes.
    await pending?.catch(() => undefined);
    await fh.close();
  }
}

/** BLAKE3 of a whole file (readChunks). */
export async function hashFile(path: string, signal?: AbortSignal): Promise<Uint8Array> {
  const h = blake3.create();
  await readChunks(path, (chunk) => h.update(chunk), { signal });
  return h.digest();
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
/**
 * Fails at once, with a StorageError naming the path, when `out` cannot become a file: it is a
 * directory, or no entry can be created beside it (no such directory, read-only or pseudo file
 * system, no permission). The check creates and removes a probe directory beside `out`: access()
 * would say yes to root on /proc.
 */
export function checkOutputPath(out: string): void {
  let isDir = false;
  try {
    isDir = statSync(out).isDirectory();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw storageError(err, 'write', out);
  }
  if (isDir) throw new StorageError(`cannot write ${out}: it is a directory`, 'ERR_STORAGE');
  const dir = dirname(resolve(out));
  let probe: string;
  try {
    probe = mkdtempSync(join(dir, '.iotupd-probe-'));
  } catch (err) {
    throw storageError(err, 'write in', dir);
  }
  rmdirSync(probe);
}

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
