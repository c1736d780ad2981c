import {
  closeSync,
  fdatasync,
  fstatSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readFileSync,
  readSync,
  renameSync,
  rmSync,
  truncateSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import { StorageError } from '../errors.js';

/**
 * On-disk spool of one object being received (docs/protocol.md "Spool"). Files in the spool dir:
 *   object    the description datagram that defined the object (written once, atomically)
 *   data.part the output being assembled: source symbols are written at their offsets on arrival
 *   symbols   fixed-size records (16-byte header + T bytes): symbols that are not source symbols
 *   journal   fixed 16-byte records: SOURCE (a source symbol now sits in data.part) and BLOCK_DONE
 *
 * Record header (both files), big-endian:
 *   0  u32 CRC-32 of bytes 4..15 of the header, then of the bytes it vouches for: the symbol in
 *          the record (SYMBOL), the symbol's bytes in data.part (SOURCE), or (BLOCK_DONE) the
 *          block check, 4 bytes big-endian: the sum mod 2^32 of the block's unit CRCs. Unit i
 *          is block bytes [i*T, min((i+1)*T, length)) in data.part, and its CRC is the one a
 *          SOURCE record for ESI i over those bytes carries; with N = 1 unit i is source symbol i,
 *          so the receiver adds up the CRCs it computes anyway and never reads a block back
 *          for its record.
 *   4  u8  kind: 1 SYMBOL, 2 SOURCE, 3 BLOCK_DONE
 *   5  u8  SBN
 *   6  u16 number of real bytes of the symbol (SOURCE: the last symbol of a block may be short)
 *   8  u32 ESI
 *  12  u32 first 4 bytes of the object id (records of another object are rejected)
 * Fixed-size records keep the files parseable after any corruption: a bad record is skipped
 * without losing the framing of the ones after it. Nothing is fdatasync'ed during a transfer:
 * every record's CRC covers the bytes it claims are there, so a record whose bytes did not reach
 * the disk before a crash fails its check on resume and the block is rebuilt from the others
 * (docs/decisions/0006-spool-without-fdatasync.md).
 */
export const RECORD_HEADER = 16;
const RUN_BYTES = 64 * 1024;
/** All blocks' write-combining runs together stay under this (a 1 GiB object has 255 blocks). */
const RUNS_TOTAL = 2 * 1024 * 1024;
/**
 * Start writeback of data.part (an fdatasync in libuv's thread pool, never blocking reception)
 * every this many bytes written, so that the fsync before the final rename finds little to do.
 */
const WRITEBACK_BYTES = 16 * 1024 * 1024;
/** The page size writeback counts in (Linux on x86-64 and most ARM devices). */
const PAGE = 4096;

/** CRC-32 (the zlib polynomial) table, for the 12 header bytes: one native call per record. */
const CRC_TABLE = (() => {
  const t = new Int32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c;
  }
  return t;
})();
export const RecordKind = { SYMBOL: 1, SOURCE: 2, BLOCK_DONE: 3 } as const;

export interface SpoolRecord {
  kind: number;
  sbn: number;
  esi: number;
  length: number;
  /** Index of the record in its file. */
  index: number;
}

function storageError(what: string, err: unknown): StorageError {
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'ENOSPC') return new StorageError(`${what}: disk full (ENOSPC)`, 'ERR_STORAGE_FULL', { cause: err });
  if (code === 'EACCES' || code === 'EPERM' || code === 'EROFS') {
    return new StorageError(`${what}: permission denied (${code})`, 'ERR_STORAGE_PERMISSION', { cause: err });
  }
  return new StorageError(`${what}: ${(err as Error).message}`, 'ERR_STORAGE', { cause: err });
}

export class Spool {
  readonly dir: string;
  private readonly tag: number;
  private readonly T: number;
  private readonly recordSize: number;
  private dataFd: number;
  private symFd: number;
  private journalFd: number;
  private symCount: number;
  private journalCount: number;
  private readonly symBuf: Uint8Array;
  private symBufUsed = 0;
  private readonly jBuf = new Uint8Array(RECORD_HEADER * 256);
  private readonly runs = new Map<number, { start: number; used: number; buf: Uint8Array }>();
  private jBufUsed = 0;
  private closed = false;
  private runBytes = RUN_BYTES;
  private recBuf: Uint8Array | undefined;
  private crcBuf: Uint8Array | undefined;
  private readonly unitHeader = new Uint8Array(RECORD_HEADER);
  private unsynced = 0;
  private syncing = false;
  /** Background writebacks of data.part started (every WRITEBACK_BYTES of dirtied pages). */
  writebacks = 0;

  /**
   * Open (creating if needed) the spool of one object. `objectTag` is the first 4 bytes of its id.
   */
  constructor(dir: string, objectTag: number, symbolSize: number) {
    this.dir = dir;
    this.tag = objectTag >>> 0;
    this.T = symbolSize;
    this.recordSize = RECORD_HEADER + symbolSize;
    this.symBuf = new Uint8Array(this.recordSize * Math.max(1, Math.floor((256 * 1024) / this.recordSize)));
    try {
      mkdirSync(dir, { recursive: true, mode: 0o700 });
      this.dataFd = openSync(join(dir, 'data.part'), 'a+');
      closeSync(this.dataFd);
      this.dataFd = openSync(join(dir, 'data.part'), 'r+');
      this.symFd = openSync(join(dir, 'symbols'), 'a+');
      this.journalFd = openSync(join(dir, 'journal'), 'a+');
    } catch (err) {
      throw storageError(`cannot create the spool in ${dir}`, err);
    }
    // Torn tails (a record cut by SIGKILL or power loss) are ignored: only whole records count.
    this.symCount = Math.floor(fstatSync(this.symFd).size / this.recordSize);
    this.journalCount = Math.floor(fstatSync(this.journalFd).size / RECORD_HEADER);
    if (fstatSync(this.symFd).size % this.recordSize !== 0 || fstatSync(this.journalFd).size % RECORD_HEADER !== 0) {
      // Reopen in a mode that lets us write at exact offsets past the torn tail.
      this.truncateTails();
    }
  }

  private truncateTails(): void {
    closeSync(this.symFd);
    closeSync(this.journalFd);
    const symPath = join(this.dir, 'symbols');
    const jPath = join(this.dir, 'journal');
    truncateSync(symPath, this.symCount * this.recordSize);
    truncateSync(jPath, this.journalCount * RECORD_HEADER);
    this.symFd = openSync(symPath, 'a+');
    this.journalFd = openSync(jPath, 'a+');
  }

  static exists(dir: string): boolean {
    try {
      readFileSync(join(dir, 'object'));
      return true;
    } catch {
      return false;
    }
  }

  static readObject(dir: string): Uint8Array | undefined {
    try {
      return new Uint8Array(readFileSync(join(dir, 'object')));
    } catch {
      return undefined;
    }
  }

  static writeObject(dir: string, description: Uint8Array): void {
    try {
      mkdirSync(dir, { recursive: true, mode: 0o700 });
      const tmp = join(dir, 'object.tmp');
      writeFileSync(tmp, description, { mode: 0o600 });
      const fd = openSync(tmp, 'r');
      fsyncSync(fd);
      closeSync(fd);
      renameSync(tmp, join(dir, 'object'));
    } catch (err) {
      throw storageError(`cannot write the spool in ${dir}`, err);
    }
  }

  static remove(dir: string): void {
    rmSync(dir, { recursive: true, force: true });
  }

  get dataPath(): string {
    return join(this.dir, 'data.part');
  }

  private header(out: Uint8Array, at: number, kind: number, sbn: number, esi: number, length: number): void {
    out[at + 4] = kind;
    out[at + 5] = sbn;
    out[at + 6] = length >>> 8;
    out[at + 7] = length;
    out[at + 8] = esi >>> 24;
    out[at + 9] = esi >>> 16;
    out[at + 10] = esi >>> 8;
    out[at + 11] = esi;
    const tag = this.tag;
    out[at + 12] = tag >>> 24;
    out[at + 13] = tag >>> 16;
    out[at + 14] = tag >>> 8;
    out[at + 15] = tag;
  }

  /** CRC-32 of header bytes 4..15, continued over `data` (the same value as zlib over both). */
  private static crc(header: Uint8Array, data: Uint8Array | undefined, at = 0): number {
    let c = -1;
    for (let i = at + 4; i < at + RECORD_HEADER; i++) c = (CRC_TABLE[(c ^ (header[i] as number)) & 0xff] as number) ^ (c >>> 8);
    c = (c ^ -1) >>> 0;
    return data && data.length > 0 ? crc32(data, c) >>> 0 : c;
  }

  private static putCrc(out: Uint8Array, at: number, c: number): void {
    out[at] = c >>> 24;
    out[at + 1] = c >>> 16;
    out[at + 2] = c >>> 8;
    out[at + 3] = c;
  }

  /** Append a SYMBOL record (buffered); returns its index in the symbols file. */
  appendSymbol(sbn: number, esi: number, symbol: Uint8Array): number {
    if (symbol.length !== this.T) throw new StorageError('symbol of the wrong size', 'ERR_STORAGE');
    if (this.symBufUsed + this.recordSize > this.symBuf.length) this.flushSymbols();
    const at = this.symBufUsed;
    this.header(this.symBuf, at, RecordKind.SYMBOL, sbn, esi, symbol.length);
    this.symBuf.set(symbol, at + RECORD_HEADER);
    Spool.putCrc(this.symBuf, at, Spool.crc(this.symBuf, symbol, at));
    this.symBufUsed += this.recordSize;
    return this.symCount++;
  }

  /**
   * Write a source symbol's real bytes into data.part at `offset` and journal it; returns the
   * record CRC. Writes are combined per block: round-robin sending makes each block's source
   * symbols arrive in order, so runs of consecutive symbols become one pwrite.
   */
  writeSource(sbn: number, esi: number, offset: number, bytes: Uint8Array): number {
    let run = this.runs.get(sbn);
    if (!run || bytes.length > run.buf.length) {
      if (run) this.flushRun(run);
      // One buffer per unfinished block, reused until the block is done (no garbage per run).
      run = { start: offset, used: 0, buf: new Uint8Array(Math.max(this.runBytes, bytes.length)) };
      this.runs.set(sbn, run);
    } else if (run.start + run.used !== offset || run.used + bytes.length > run.buf.length) {
      this.flushRun(run);
      run.start = offset;
    }
    run.buf.set(bytes, run.used);
    run.used += bytes.length;
    return this.journal(RecordKind.SOURCE, sbn, esi, bytes);
  }

  /** Size the write-combining runs for `blocks` interleaved blocks (RUNS_TOTAL in all). */
  setBlockCount(blocks: number): void {
    this.runBytes = Math.max(4096, Math.min(RUN_BYTES, Math.floor(RUNS_TOTAL / Math.max(1, blocks))));
  }

  private flushRun(run: { start: number; used: number; buf: Uint8Array }): void {
    if (run.used > 0) this.writeData0(run.buf.subarray(0, run.used), run.start);
    run.start += run.used;
    run.used = 0;
  }

  private flushRuns(): void {
    for (const run of this.runs.values()) this.flushRun(run);
  }

  /** Write a decoded range into data.part (no journal record). */
  writeData(offset: number, bytes: Uint8Array): void {
    this.flushRuns();
    this.writeData0(bytes, offset);
  }

  private writeData0(bytes: Uint8Array, offset: number): void {
    this.pwrite(this.dataFd, bytes, offset, 'cannot write the output');
    // Count the pages the write dirtied, not its bytes: a decoded block's missing symbols are
    // short writes spread over the block (at 10 % loss about a third of its pages); counted by
    // bytes, they would leave tens of MB dirty for the final fsync.
    this.unsynced += (Math.floor((offset + bytes.length - 1) / PAGE) - Math.floor(offset / PAGE) + 1) * PAGE;
    if (this.unsynced >= WRITEBACK_BYTES && !this.syncing) {
      this.unsynced = 0;
      this.syncing = true;
      this.writebacks += 1;
      // Only to get writeback going early; durability comes from the CRCs and the final fsync.
      // An error here (e.g. EBADF once the spool is closed) is not a fact about the data.
      fdatasync(this.dataFd, () => {
        this.syncing = false;
      });
    }
  }

  /**
   * Record a block as done; `check` is its block check (the sum of its unit CRCs, `unitCrc`) as
   * its bytes now are in data.part. Resume trusts the record only if data.part still adds up to
   * it: no fdatasync needed, as a power loss can only make the check fail and the block be rebuilt.
   */
  blockDone(sbn: number, check: number): void {
    this.flushRuns();
    this.runs.delete(sbn);
    this.journalCrc(RecordKind.BLOCK_DONE, sbn, Spool.blockRecordCrc(this.headerOf(RecordKind.BLOCK_DONE, sbn, 0, 0), check));
    // Written through (not synced): a killed process loses nothing that the kernel has.
    this.flushJournal();
  }

  /** The CRC a SOURCE record for (sbn, esi) over `bytes` carries: unit `esi`'s share of the block check. */
  unitCrc(sbn: number, esi: number, bytes: Uint8Array): number {
    return Spool.crc(this.headerOf(RecordKind.SOURCE, sbn, esi, bytes.length, this.unitHeader), bytes);
  }

  /** A BLOCK_DONE record's CRC checked against the block's bytes in data.part, read in chunks. */
  checkBlockInData(expectedCrc: number, sbn: number, offset: number, length: number): boolean {
    this.flushRuns();
    const T = this.T;
    const chunk = (this.crcBuf ??= new Uint8Array(T * Math.max(1, Math.floor((256 * 1024) / T))));
    let sum = 0;
    for (let pos = 0; pos < length; pos += chunk.length) {
      const part = this.readDataInto(offset + pos, chunk.subarray(0, Math.min(chunk.length, length - pos)));
      for (let at = 0; at < part.length; at += T) sum = (sum + this.unitCrc(sbn, (pos + at) / T, part.subarray(at, Math.min(part.length, at + T)))) >>> 0;
    }
    return Spool.blockRecordCrc(this.headerOf(RecordKind.BLOCK_DONE, sbn, 0, 0), sum) === expectedCrc >>> 0;
  }

  private static blockRecordCrc(header: Uint8Array, check: number): number {
    const be = Uint8Array.of(check >>> 24, check >>> 16, check >>> 8, check);
    return Spool.crc(header, be);
  }

  private headerOf(kind: number, sbn: number, esi: number, length: number, into = new Uint8Array(RECORD_HEADER)): Uint8Array {
    const h = into;
    this.header(h, 0, kind, sbn, esi, length);
    return h;
  }

  /** Append a record (length and ESI 0) with a CRC computed by the caller (BLOCK_DONE). */
  private journalCrc(kind: number, sbn: number, crc: number): void {
    if (this.jBufUsed + RECORD_HEADER > this.jBuf.length) this.flushJournal();
    const at = this.jBufUsed;
    this.header(this.jBuf, at, kind, sbn, 0, 0);
    Spool.putCrc(this.jBuf, at, crc);
    this.jBufUsed += RECORD_HEADER;
  }

  /** Append a record whose CRC covers its header and `data` (SOURCE: the symbol's bytes). */
  private journal(kind: number, sbn: number, esi: number, data: Uint8Array): number {
    if (this.jBufUsed + RECORD_HEADER > this.jBuf.length) this.flushJournal();
    const at = this.jBufUsed;
    this.header(this.jBuf, at, kind, sbn, esi, data.length);
    const c = Spool.crc(this.jBuf, data, at);
    Spool.putCrc(this.jBuf, at, c);
    this.jBufUsed += RECORD_HEADER;
    return c;
  }

  private pwrite(fd: number, bytes: Uint8Array, position: number | null, what: string): void {
    try {
      let done = 0;
      while (done < bytes.length) {
        done += writeSync(fd, bytes, done, bytes.length - done, position === null ? null : position + done);
      }
    } catch (err) {
      throw storageError(what, err);
    }
  }

  flushSymbols(): void {
    if (this.symBufUsed === 0) return;
    this.pwrite(this.symFd, this.symBuf.subarray(0, this.symBufUsed), null, 'cannot write the spool');
    this.symBufUsed = 0;
  }

  flushJournal(): void {
    if (this.jBufUsed === 0) return;
    this.pwrite(this.journalFd, this.jBuf.subarray(0, this.jBufUsed), null, 'cannot write the spool journal');
    this.jBufUsed = 0;
  }

  flush(): void {
    this.flushRuns();
    this.flushSymbols();
    this.flushJournal();
  }

  private pread(fd: number, out: Uint8Array, position: number): number {
    let done = 0;
    while (done < out.length) {
      const n = readSync(fd, out, done, out.length - done, position + done);
      if (n === 0) break;
      done += n;
    }
    return done;
  }

  /** Read `length` bytes of data.part (zero-filled beyond its end). */
  readData(offset: number, length: number): Uint8Array {
    return this.readDataInto(offset, new Uint8Array(length));
  }

  /** Fill `out` from data.part at `offset` (zero-filled beyond its end); returns `out`. */
  readDataInto(offset: number, out: Uint8Array): Uint8Array {
    this.flushRuns();
    const n = this.pread(this.dataFd, out, offset);
    if (n < out.length) out.fill(0, n);
    return out;
  }

  /**
   * Read symbol record `index`, verifying its CRC and identity; undefined when corrupt. The
   * returned bytes live in a buffer the next call overwrites: copy them.
   */
  readSymbol(index: number, sbn: number, esi: number): Uint8Array | undefined {
    this.flushSymbols();
    const rec = (this.recBuf ??= new Uint8Array(this.recordSize));
    if (this.pread(this.symFd, rec, index * this.recordSize) !== rec.length) return undefined;
    const r = this.parseHeader(rec, undefined);
    if (!r || r.kind !== RecordKind.SYMBOL || r.sbn !== sbn || r.esi !== esi) return undefined;
    const data = rec.subarray(RECORD_HEADER);
    if (Spool.crc(rec, data) !== r.crc) return undefined;
    return data;
  }

  private parseHeader(h: Uint8Array, index: number | undefined): (SpoolRecord & { crc: number }) | undefined {
    const dv = new DataView(h.buffer, h.byteOffset, RECORD_HEADER);
    if (dv.getUint32(12) !== this.tag) return undefined;
    return { crc: dv.getUint32(0), kind: dv.getUint8(4), sbn: dv.getUint8(5), length: dv.getUint16(6), esi: dv.getUint32(8), index: index ?? -1 };
  }

  /**
   * Scan both files (streaming, bounded memory). SYMBOL records are CRC-checked here; SOURCE and
   * BLOCK_DONE records are returned with their CRC for checking against data.part. Corrupt
   * records are counted and skipped.
   */
  scan(onRecord: (r: SpoolRecord & { crc: number }) => void): { corrupt: number } {
    this.flush();
    let corrupt = 0;
    const batch = Math.max(1, Math.floor((1 << 20) / this.recordSize));
    const buf = new Uint8Array(batch * this.recordSize);
    for (let i = 0; i < this.symCount; i += batch) {
      const n = Math.min(batch, this.symCount - i);
      const got = this.pread(this.symFd, buf.subarray(0, n * this.recordSize), i * this.recordSize);
      for (let j = 0; j < n; j++) {
        const rec = buf.subarray(j * this.recordSize, (j + 1) * this.recordSize);
        const r = (j + 1) * this.recordSize <= got ? this.parseHeader(rec, i + j) : undefined;
        if (!r || r.kind !== RecordKind.SYMBOL || r.length !== this.T || Spool.crc(rec, rec.subarray(RECORD_HEADER)) !== r.crc) {
          corrupt += 1;
          continue;
        }
        onRecord(r);
      }
    }
    const jbuf = new Uint8Array(RECORD_HEADER * 4096);
    for (let i = 0; i < this.journalCount; i += 4096) {
      const n = Math.min(4096, this.journalCount - i);
      const got = this.pread(this.journalFd, jbuf.subarray(0, n * RECORD_HEADER), i * RECORD_HEADER);
      for (let j = 0; j < n; j++) {
        const rec = jbuf.subarray(j * RECORD_HEADER, (j + 1) * RECORD_HEADER);
        const r = (j + 1) * RECORD_HEADER <= got ? this.parseHeader(rec, i + j) : undefined;
        if (!r || (r.kind !== RecordKind.SOURCE && r.kind !== RecordKind.BLOCK_DONE)) {
          corrupt += 1;
          continue;
        }
        onRecord(r);
      }
    }
    return { corrupt };
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    try {
      this.flush();
    } finally {
      closeSync(this.dataFd);
      closeSync(this.symFd);
      closeSync(this.journalFd);
    }
  }

  /** Close without flushing buffers (simulates a crash in tests; also used after a write error). */
  abandon(): void {
    if (this.closed) return;
    this.closed = true;
    closeSync(this.dataFd);
    closeSync(this.symFd);
    closeSync(this.journalFd);
  }
}

