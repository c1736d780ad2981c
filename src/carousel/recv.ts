/**
 * Carousel receiver driver: joins the group on one interface, feeds datagrams to the I/O-free
 * CarouselReceiver, writes each new chunk at its offset in OUT (positional writes), keeps a
 * resume state beside OUT, verifies the whole-file BLAKE3 and resolves once OUT is correct.
 *
 * Resume (docs/carousel.md "Resume"): OUT.iotupd-state holds size, hash and the chunk bitmap.
 * It is rewritten atomically about once a second, always after fdatasync(OUT), so it never
 * claims a chunk that is not on disk; a receiver killed at any moment (even SIGKILL) and
 * started again asks only for the chunks it lacks. Without a state, an existing OUT of the
 * right size is hashed first (it may already be the file).
 */
import { closeSync, constants, fdatasyncSync, fstatSync, ftruncateSync, fsyncSync, openSync, readFileSync, writeSync } from 'node:fs';
import { AbortError, DecodeError, IotupdError, UsageError, abortError } from '../errors.js';
import { hashFile, hex, removeIfExists, storageError, writeFileAtomicSync } from '../fsutil/index.js';
import { McastSocket } from '../net/index.js';
import { CHUNK_SIZE } from '../wire/iotupd-frame.js';
import { CarouselReceiver, type ReceiverStats } from './receiver.js';
import { decodeState, encodeState, type ResumeState } from './state.js';

export const STATE_SUFFIX = '.iotupd-state';

export interface CarouselReceiveOptions {
  out: string;
  interface: string;
  group: string;
  /** UDP port to listen on (default 4242). */
  port?: number;
  /** Give up (ERR_TIMEOUT) after this long without a complete, verified file. */
  timeoutMs?: number;
  signal?: AbortSignal;
  onProgress?: (p: CarouselReceiveProgress) => void;
  /** Default 250 ms. */
  progressIntervalMs?: number;
  onEvent?: (e: CarouselReceiveEvent) => void;
  /** How often the resume state is saved (default 1000 ms). */
  stateIntervalMs?: number;
  /** Largest file accepted (default 64 GiB). */
  maxSize?: number;
}

export type CarouselReceivePhase = 'waiting' | 'receiving' | 'verifying' | 'done';

export interface CarouselReceiveProgress {
  phase: CarouselReceivePhase;
  /** File size once known. */
  size: number | undefined;
  chunks: number;
  chunksTotal: number;
  /** Bytes present (chunks held, the last one counted at its real length). */
  bytes: number;
  elapsedMs: number;
  stats: ReceiverStats;
}

export interface CarouselReceiveResult extends CarouselReceiveProgress {
  size: number;
  hash: string;
  /** Chunks found in a resume state at start. */
  resumedChunks: number;
  /** True if an existing OUT already had the right hash. */
  alreadyPresent: boolean;
}

export type CarouselReceiveEvent =
  /** The socket is bound and has joined the group: datagrams sent from now on are received. */
  | { type: 'listening'; group: string; port: number; interface: string }
  | { type: 'resume'; chunks: number; chunksTotal: number; size: number; hash: string }
  | { type: 'state-ignored'; reason: string }
  | { type: 'file'; size: number; hash: string }
  | { type: 'existing-file-matches' }
  | { type: 'hash-mismatch'; failures: number };

function bytesPresent(rx: CarouselReceiver): number {
  const bm = rx.bitmap;
  const id = rx.identity;
  if (!bm || !id) return 0;
  const last = bm.size - 1;
  if (last < 0) return 0;
  return bm.count * CHUNK_SIZE - (bm.has(last) ? last * CHUNK_SIZE + CHUNK_SIZE - id.size : 0);
}

function loadState(path: string, outSize: number, emit: (e: CarouselReceiveEvent) => void): ResumeState | undefined {
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw storageError(err, 'read', path);
  }
  let state: ResumeState;
  try {
    state = decodeState(bytes);
  } catch (err) {
    if (err instanceof DecodeError) {
      emit({ type: 'state-ignored', reason: err.message });
      return undefined;
    }
    throw err;
  }
  if (state.size !== outSize) {
    emit({ type: 'state-ignored', reason: `the output file is ${outSize} bytes, the state is for ${state.size}` });
    return undefined;
  }
  return state;
}

export async function receiveCarousel(opts: CarouselReceiveOptions): Promise<CarouselReceiveResult> {
  const out = opts.out;
  const statePath = out + STATE_SUFFIX;
  const emit = (e: CarouselReceiveEvent): void => opts.onEvent?.(e);
  if (opts.signal?.aborted) throw abortError(opts.signal);

  let fd: number;
  try {
    fd = openSync(out, constants.O_RDWR | constants.O_CREAT, 0o644);
  } catch (err) {
    throw storageError(err, 'write', out);
  }
  let sock: McastSocket | undefined;
  try {
    if (!fstatSync(fd).isFile()) throw new UsageError(`${out} is not a regular file`);
    const state = loadState(statePath, fstatSync(fd).size, emit);
    const rx = new CarouselReceiver(state ? { expect: state, present: state.present, maxSize: opts.maxSize } : { maxSize: opts.maxSize });
    const resumedChunks = rx.bitmap?.count ?? 0;
    if (state) emit({ type: 'resume', chunks: resumedChunks, chunksTotal: rx.bitmap!.size, size: state.size, hash: hex(state.hash) });
    // Bound to the group address: the kernel hands us only this group's datagrams.
    sock = await McastSocket.open({ interface: opts.interface, port: opts.port ?? 4242, bindAddress: opts.group });
    sock.join(opts.group);
    emit({ type: 'listening', group: opts.group, port: sock.port, interface: opts.interface });
    return await run(opts, fd, sock, rx, Boolean(state), resumedChunks);
  } finally {
    await sock?.close();
    try {
      closeSync(fd);
    } catch {
      // closed already
    }
  }
}

function run(opts: CarouselReceiveOptions, fd: number, sock: McastSocket, rx: CarouselReceiver, resumed: boolean, resumedChunks: number): Promise<CarouselReceiveResult> {
  const out = opts.out;
  const statePath = out + STATE_SUFFIX;
  const emit = (e: CarouselReceiveEvent): void => opts.onEvent?.(e);
  const t0 = performance.now();
  let prepared = resumed; // OUT sized for the pinned file
  let dirty = false; // chunks written since the last state save
  let hashing = false;
  // Hashing an existing OUT: datagrams are ignored meanwhile (the carousel repeats them), so
  // no write can change bytes the hash has already read or is about to read.
  let checkingExisting = false;
  let finished = false;
  let alreadyPresent = false;
  const timers: NodeJS.Timeout[] = [];

  const progress = (phase: CarouselReceivePhase): CarouselReceiveProgress => ({
    phase,
    size: rx.identity?.size,
    chunks: rx.bitmap?.count ?? 0,
    chunksTotal: rx.bitmap?.size ?? 0,
    bytes: alreadyPresent ? (rx.identity?.size ?? 0) : bytesPresent(rx),
    elapsedMs: performance.now() - t0,
    stats: rx.stats(),
  });
  const phase = (): CarouselReceivePhase => (finished ? 'done' : hashing && rx.complete ? 'verifying' : rx.identity ? 'receiving' : 'waiting');

  const saveState = (): void => {
    const id = rx.identity;
    if (!id || !rx.bitmap || !dirty) return;
    fdatasyncSync(fd); // data first: the state must never claim a chunk that is not on disk
    writeFileAtomicSync(statePath, encodeState({ size: id.size, hash: id.hash, present: rx.bitmap.bytes }));
    dirty = false;
  };

  return new Promise<CarouselReceiveResult>((resolve, reject) => {
    const stop = (): void => {
      finished = true;
      for (const t of timers) clearInterval(t);
      sock.onMessage(undefined);
      opts.signal?.removeEventListener('abort', onAbort);
    };
    const fail = (err: unknown): void => {
      if (finished) return;
      stop();
      try {
        saveState();
      } catch {
        // best effort (the disk may be full): the old state, if any, still describes OUT
      }
      const e = err instanceof IotupdError ? err : storageError(err, 'write', out);
      opts.onProgress?.(progress('done'));
      reject(e);
    };
    const succeed = (): void => {
      if (finished) return;
      stop();
      try {
        fsyncSync(fd);
        removeIfExists(statePath);
      } catch (err) {
        reject(storageError(err, 'write', out));
        return;
      }
      const p = progress('done');
      opts.onProgress?.(p);
      const id = rx.identity!;
      resolve({ ...p, size: id.size, hash: hex(id.hash), resumedChunks, alreadyPresent });
    };
    const kept = (): string => {
      const p = progress('done');
      return p.size === undefined
        ? 'no frame of any file was received'
        : `partial file kept in ${out} (${p.chunks}/${p.chunksTotal} chunks); run the same command again to resume`;
    };
    const onAbort = (): void => fail(new AbortError(`${abortError(opts.signal).message}: ${kept()}`, { cause: opts.signal?.reason }));

    /** Hash OUT; `final` = the bitmap is full (a mismatch then starts over). */
    const verify = (final: boolean): void => {
      if (hashing || finished) return;
      hashing = true;
      hashFile(out).then(
        (h) => {
          hashing = false;
          checkingExisting = false;
          if (finished) return;
          const want = rx.identity!.hash;
          if (hex(h) === hex(want)) {
            if (!final) {
              alreadyPresent = true;
              emit({ type: 'existing-file-matches' });
            }
            succeed();
            return;
          }
          if (final && rx.complete) {
            rx.verified(false);
            dirty = true;
            emit({ type: 'hash-mismatch', failures: rx.stats().hashFailures });
          }
          if (rx.complete) verify(true);
        },
        (err: unknown) => {
          hashing = false;
          checkingExisting = false;
          fail(err);
        },
      );
    };

    const prepare = (): void => {
      const id = rx.identity!;
      prepared = true;
      emit({ type: 'file', size: id.size, hash: hex(id.hash) });
      const existing = fstatSync(fd).size;
      if (existing === id.size && id.size > 0) {
        checkingExisting = true;
        verify(false); // maybe OUT is already this file
      } else if (existing !== id.size) {
        ftruncateSync(fd, id.size);
      }
    };

    sock.onMessage((d) => {
      if (finished || checkingExisting) return;
      try {
        const r = rx.push(d.data, d.from);
        if (!prepared && rx.identity) {
          prepare();
          // The existing OUT is judged as it is on disk: this first chunk waits for the next pass.
          if (checkingExisting && r.kind === 'write') {
            rx.unwrite(r.chunk);
            return;
          }
        }
        if (r.kind === 'write') {
          try {
            let off = 0;
            while (off < r.data.length) off += writeSync(fd, r.data, off, r.data.length - off, r.offset + off);
          } catch (err) {
            rx.unwrite(r.chunk);
            throw err;
          }
          dirty = true;
        }
        if (rx.complete) verify(true);
      } catch (err) {
        fail(err);
      }
    });

    timers.push(
      setInterval(() => {
        try {
          saveState();
        } catch (err) {
          fail(err);
        }
      }, opts.stateIntervalMs ?? 1000),
    );
    if (opts.onProgress) {
      const cb = opts.onProgress;
      timers.push(setInterval(() => cb(progress(phase())), opts.progressIntervalMs ?? 250));
    }
    if (opts.timeoutMs !== undefined) {
      const t = setTimeout(() => {
        const s = rx.stats();
        const hint =
          s.dropped.foreign > 0 && s.written === 0
            ? `; only frames of another file arrived (${s.dropped.foreign}); this output is pinned to hash ${hex(rx.identity?.hash ?? new Uint8Array())}: remove ${statePath} to fetch the new file`
            : '';
        fail(new IotupdError('ERR_TIMEOUT', `timed out after ${(opts.timeoutMs! / 1000).toFixed(1)} s: ${kept()}${hint}`));
      }, opts.timeoutMs);
      timers.push(t);
    }
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    if (opts.signal?.aborted) onAbort();
    // A resumed state can already be complete (killed between the last chunk and the check).
    if (rx.complete) verify(true);
  });
}
