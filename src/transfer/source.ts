import { openSync, readSync, closeSync, fstatSync } from 'node:fs';
import { StorageError } from '../errors.js';

/** Random access to the bytes of the object being sent. Reads are synchronous and bounded. */
export interface ObjectSource {
  readonly size: number;
  /** Exactly `length` bytes starting at `offset` (a fresh or shared buffer; callers do not keep it). */
  read(offset: number, length: number): Uint8Array;
  /** Fills `out` with the bytes starting at `offset` (no allocation). */
  readInto(offset: number, out: Uint8Array): void;
  close(): void;
}

export class BytesSource implements ObjectSource {
  readonly size: number;
  constructor(private readonly bytes: Uint8Array) {
    this.size = bytes.length;
  }
  read(offset: number, length: number): Uint8Array {
    if (offset < 0 || length < 0 || offset + length > this.size) throw new StorageError('read beyond the object', 'ERR_STORAGE_READ');
    return this.bytes.subarray(offset, offset + length);
  }
  readInto(offset: number, out: Uint8Array): void {
    out.set(this.read(offset, out.length));
  }
  close(): void {}
}

/** A file read on demand (pread), so a sender of a huge object keeps only what it encodes. */
export class FileSource implements ObjectSource {
  readonly size: number;
  private fd: number | undefined;
  constructor(readonly path: string) {
    try {
      this.fd = openSync(path, 'r');
      this.size = fstatSync(this.fd).size;
    } catch (err) {
      throw new StorageError(`cannot read ${path}: ${(err as Error).message}`, 'ERR_STORAGE_READ', { cause: err });
    }
  }
  read(offset: number, length: number): Uint8Array {
    if (length < 0) throw new StorageError('read beyond the object', 'ERR_STORAGE_READ');
    const out = new Uint8Array(length);
    this.readInto(offset, out);
    return out;
  }
  readInto(offset: number, out: Uint8Array): void {
    if (this.fd === undefined) throw new StorageError(`${this.path} is closed`, 'ERR_STORAGE_READ');
    const length = out.length;
    if (offset < 0 || offset + length > this.size) throw new StorageError('read beyond the object', 'ERR_STORAGE_READ');
    let done = 0;
    while (done < length) {
      const n = readSync(this.fd, out, done, length - done, offset + done);
      if (n === 0) throw new StorageError(`${this.path} shrank while being sent`, 'ERR_STORAGE_READ');
      done += n;
    }
  }
  close(): void {
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
  }
}
