import { accessSync, closeSync, constants as fsConstants, fsyncSync, mkdirSync, openSync, renameSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { StorageError } from '../../errors.js';
import { RecordKind, Spool } from '../spool.js';
import type { ReceiverStore, StoreLayout, StoreResume, StoredBlock } from './store.js';

export interface FileStoreOptions {
  /** Final path of the object. */
  out: string;
  /** Spool directory (default: `.OUTNAME.iotupd` next to `out`, same file system for the rename). */
  spoolDir?: string;
  /** Keep the spool after success (tests). */
  keepSpool?: boolean;
}

/**
 * The on-disk store: the spool (src/transfer/spool.ts, docs/protocol.md "Spool") in a directory
 * next to the output, `data.part` renamed into place once the object is verified. Every record
 * carries a CRC of the bytes it vouches for, so nothing is fdatasync'ed while receiving, and a
 * store opened after a crash or power loss reports only what it can check (resume).
 *
 * The block check of a BLOCK_DONE record is the sum of the block's unit CRCs: the store adds up
 * those of the units it writes (the CRC of a source symbol is computed for its SOURCE record
 * anyway), so a finished block is never read back for its record.
 */
export class FileStore implements ReceiverStore {
  readonly out: string;
  readonly dir: string;
  private readonly keepSpool: boolean;
  private spool: Spool | undefined;
  private layout: StoreLayout | undefined;
  /** Per block, the sum mod 2^32 of the CRCs of its units written at their place. */
  private checks = new Uint32Array(0);

  /** Checks that the output directory is writable: a clear StorageError before anything is received. */
  constructor(opts: FileStoreOptions) {
    this.out = resolve(opts.out);
    this.dir = opts.spoolDir ? resolve(opts.spoolDir) : join(dirname(this.out), `.${basename(this.out)}.iotupd`);
    this.keepSpool = opts.keepSpool ?? false;
    checkWritableDir(dirname(this.out));
  }

  saved(): Uint8Array | undefined {
    return Spool.readObject(this.dir);
  }

  open(description: Uint8Array, layout: StoreLayout, resume: boolean): StoreResume | undefined {
    if (!resume) Spool.writeObject(this.dir, description);
    const tag = new DataView(layout.objectId.buffer, layout.objectId.byteOffset, 4).getUint32(0);
    this.spool = new Spool(this.dir, tag, layout.symbolSize);
    this.spool.setBlockCount(layout.blocks.length);
    this.layout = layout;
    this.checks = new Uint32Array(layout.blocks.length);
    return resume ? this.restore(this.spool, layout) : undefined;
  }

  private opened(): { spool: Spool; layout: StoreLayout } {
    if (!this.spool || !this.layout) throw new StorageError('the store is not open', 'ERR_STORAGE');
    return { spool: this.spool, layout: this.layout };
  }

  /**
   * What the spool holds, checked: BLOCK_DONE blocks whose units in data.part add up to the
   * record's block check, SOURCE records whose bytes in data.part match their CRC, SYMBOL
   * records whose CRC matches (nothing was fdatasync'ed: after a power loss some bytes may not
   * have reached the disk, and those records fail their check).
   */
  private restore(spool: Spool, layout: StoreLayout): StoreResume {
    const T = layout.symbolSize;
    const blocks: StoredBlock[] = layout.blocks.map(() => ({ done: false, placed: [], keptEsis: [], keptRefs: [] }));
    const sources: { sbn: number; esi: number; crc: number; length: number }[] = [];
    const doneCrc = new Map<number, number>();
    let corrupt = 0;
    const scanned = spool.scan((r) => {
      const b = blocks[r.sbn];
      if (!b) corrupt += 1;
      else if (r.kind === RecordKind.BLOCK_DONE) doneCrc.set(r.sbn, r.crc);
      else if (r.kind === RecordKind.SYMBOL) {
        b.keptEsis.push(r.esi);
        b.keptRefs.push(r.index);
      } else if (r.kind === RecordKind.SOURCE) sources.push({ sbn: r.sbn, esi: r.esi, crc: r.crc, length: r.length });
    });
    corrupt += scanned.corrupt;
    for (const [sbn, crc] of doneCrc) {
      const span = layout.blocks[sbn] as StoreLayout['blocks'][number];
      if (spool.checkBlockInData(crc, sbn, span.offset, span.length)) blocks[sbn] = { done: true, placed: [], keptEsis: [], keptRefs: [] };
      else corrupt += 1;
    }
    // SOURCE records: their bytes in data.part are checked block by block (one read per block).
    sources.sort((a, b) => a.sbn - b.sbn || a.esi - b.esi);
    let cur: { sbn: number; data: Uint8Array } | undefined;
    let scratch = new Uint8Array(0);
    for (const s of sources) {
      const span = layout.blocks[s.sbn] as StoreLayout['blocks'][number];
      const b = blocks[s.sbn] as StoredBlock;
      if (b.done || b.placed.at(-1) === s.esi) continue;
      if (s.esi >= span.k || s.length !== Math.min(T, span.length - s.esi * T)) {
        corrupt += 1;
        continue;
      }
      if (!cur || cur.sbn !== s.sbn) {
        if (scratch.length < span.length) scratch = new Uint8Array(span.length);
        cur = { sbn: s.sbn, data: spool.readDataInto(span.offset, scratch.subarray(0, span.length)) };
      }
      if (spool.unitCrc(s.sbn, s.esi, cur.data.subarray(s.esi * T, s.esi * T + s.length)) !== s.crc >>> 0) {
        corrupt += 1;
        continue;
      }
      b.placed.push(s.esi);
      this.checks[s.sbn] = ((this.checks[s.sbn] as number) + s.crc) >>> 0;
    }
    return { blocks, corrupt };
  }

  writeSource(sbn: number, esi: number, bytes: Uint8Array): void {
    const spool = this.spool as Spool;
    const span = (this.layout as StoreLayout).blocks[sbn] as StoreLayout['blocks'][number];
    const crc = spool.writeSource(sbn, esi, span.offset + esi * (this.layout as StoreLayout).symbolSize, bytes);
    this.checks[sbn] = ((this.checks[sbn] as number) + crc) >>> 0;
  }

  keepSymbol(sbn: number, esi: number, symbol: Uint8Array): number {
    return (this.spool as Spool).appendSymbol(sbn, esi, symbol);
  }

  readSymbol(ref: number, sbn: number, esi: number): Uint8Array | undefined {
    return this.opened().spool.readSymbol(ref, sbn, esi);
  }

  readData(offset: number, out: Uint8Array): Uint8Array {
    return this.opened().spool.readDataInto(offset, out);
  }

  writeUnits(sbn: number, first: number, bytes: Uint8Array): void {
    const { spool, layout } = this.opened();
    const T = layout.symbolSize;
    const span = layout.blocks[sbn] as StoreLayout['blocks'][number];
    let check = this.checks[sbn] as number;
    for (let at = 0, unit = first; at < bytes.length; at += T, unit++) check = (check + spool.unitCrc(sbn, unit, bytes.subarray(at, Math.min(bytes.length, at + T)))) >>> 0;
    this.checks[sbn] = check;
    spool.writeData(span.offset + first * T, bytes);
  }

  resetBlock(sbn: number): void {
    this.checks[sbn] = 0;
  }

  blockDone(sbn: number): void {
    this.opened().spool.blockDone(sbn, this.checks[sbn] as number);
  }

  /** Background writebacks of data.part started so far (Spool.writebacks). */
  get writebacks(): number {
    return this.spool?.writebacks ?? 0;
  }

  /** fsync data.part, rename it over `out` (atomic, same file system), fsync the directory. */
  commit(): void {
    this.opened().spool.close();
    this.spool = undefined;
    const tmp = join(this.dir, 'data.part');
    try {
      // data.part may be shorter than the object if it ends with bytes never written (zero size).
      const fd = openSync(tmp, 'r+');
      try {
        fsyncSync(fd);
      } finally {
        closeSync(fd);
      }
      renameSync(tmp, this.out);
      const dfd = openSync(dirname(this.out), 'r');
      try {
        fsyncSync(dfd);
      } finally {
        closeSync(dfd);
      }
    } catch (err) {
      throw new StorageError(`cannot move the result to ${this.out}: ${(err as Error).message}`, 'ERR_STORAGE', { cause: err });
    }
    if (!this.keepSpool) Spool.remove(this.dir);
  }

  discard(): void {
    this.spool?.abandon();
    this.spool = undefined;
    Spool.remove(this.dir);
  }

  close(): void {
    this.spool?.close();
    this.spool = undefined;
  }

  abandon(): void {
    this.spool?.abandon();
    this.spool = undefined;
  }
}

function checkWritableDir(dir: string): void {
  try {
    mkdirSync(dir, { recursive: true });
    accessSync(dir, fsConstants.W_OK);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'error';
    throw new StorageError(`output directory ${dir} is not writable (${code})`, 'ERR_STORAGE_PERMISSION', { cause: err });
  }
}
