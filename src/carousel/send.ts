/**
 * Carousel sender driver: reads FILE, paces frames to a rate, sends them to a multicast group
 * on one interface through src/net. The protocol itself lives in CarouselSender (I/O-free).
 */
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { UsageError } from '../errors.js';
import { hashFile, storageError } from '../fsutil/index.js';
import { McastSocket } from '../net/index.js';
import { CHUNK_SIZE, MAX_FILE_SIZE } from '../wire/iotupd-frame.js';
import { TokenBucket } from './pacing.js';
import { CarouselSender, WIRE_BYTES_PER_FRAME } from './sender.js';

/** Default rate: 10 Mbit/s on the wire, a rate any LAN or Wi-Fi link carries without harm. */
export const DEFAULT_RATE_MBIT = 10;

export interface CarouselSendOptions {
  file: string;
  /** Interface name (validated by src/net; never a default). */
  interface: string;
  /** Multicast group to send to. */
  group: string;
  /** Destination UDP port (default 4242). */
  port?: number;
  /** Mbit/s on the wire, IPv6 + UDP headers included (default 10). */
  rateMbit?: number;
  /** Full passes over the file; default Infinity (forever, until `signal` aborts). */
  passes?: number;
  /** Start offset in bytes (rounded down to a multiple of 1194). */
  startOffset?: number;
  hopLimit?: number;
  signal?: AbortSignal;
  /** Called about every `progressIntervalMs` (default 250) and once at the end. */
  onProgress?: (p: CarouselSendProgress) => void;
  progressIntervalMs?: number;
}

export interface CarouselSendProgress {
  size: number;
  hash: Uint8Array;
  frames: number;
  framesPerPass: number;
  /** Passes completed (fractional). */
  passes: number;
  elapsedMs: number;
  /** Mbit/s on the wire averaged since the start. */
  rateMbit: number;
  /** Send failures the socket reported (sampled on the fast path, see McastSocket.trySend). */
  sendErrors: number;
  done: boolean;
}

export interface CarouselSendResult extends CarouselSendProgress {
  /** True if `signal` stopped the sender before its passes were done. */
  interrupted: boolean;
}

/** Read-ahead of 64 chunks per read(2), so each frame does not cost a system call. */
class ChunkCache {
  readonly #fd: number;
  readonly #size: number;
  readonly #path: string;
  readonly #buf = new Uint8Array(64 * CHUNK_SIZE);
  #start = -1;
  #end = -1;

  constructor(fd: number, size: number, path: string) {
    this.#fd = fd;
    this.#size = size;
    this.#path = path;
  }

  read = (offset: number, length: number): Uint8Array => {
    if (offset < this.#start || offset + length > this.#end) {
      const want = Math.min(this.#buf.length, this.#size - offset);
      let got = 0;
      try {
        while (got < want) {
          const n = readSync(this.#fd, this.#buf, got, want - got, offset + got);
          if (n === 0) break;
          got += n;
        }
      } catch (err) {
        throw storageError(err, 'read', this.#path);
      }
      if (got < length) throw storageError(new Error('the file shrank while being sent'), 'read', this.#path);
      this.#start = offset;
      this.#end = offset + got;
    }
    return this.#buf.subarray(offset - this.#start, offset - this.#start + length);
  };
}

export async function sendCarousel(opts: CarouselSendOptions): Promise<CarouselSendResult> {
  const rateMbit = opts.rateMbit ?? DEFAULT_RATE_MBIT;
  if (!(rateMbit > 0 && rateMbit <= 100_000)) throw new UsageError(`rate must be from 0 to 100000 Mbit/s, got ${rateMbit}`);
  let fd: number;
  try {
    fd = openSync(opts.file, 'r');
  } catch (err) {
    throw storageError(err, 'read', opts.file);
  }
  let sock: McastSocket | undefined;
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) throw new UsageError(`${opts.file} is not a regular file`);
    if (st.size > MAX_FILE_SIZE) throw new UsageError(`${opts.file}: ${st.size} bytes is over the ${MAX_FILE_SIZE}-byte limit of the iotupd format`);
    const size = st.size;
    const startOffset = opts.startOffset ?? 0;
    if (!Number.isSafeInteger(startOffset) || startOffset < 0 || (startOffset >= size && startOffset !== 0)) {
      throw new UsageError(`--offset ${startOffset} is outside the ${size}-byte file`);
    }
    // Socket first, so a wrong interface is reported before a long hash. An ephemeral port:
    // the sender never receives, and must not take 4242 from receivers on the same host.
    sock = await McastSocket.open({ interface: opts.interface, port: 0, hopLimit: opts.hopLimit, signal: opts.signal });
    // The whole-file hash (streamed): every frame carries it.
    const hash = await hashFile(opts.file, opts.signal);
    const cache = new ChunkCache(fd, size, opts.file);
    const tx = new CarouselSender({ size, hash, readChunk: cache.read, startOffset, passes: opts.passes ?? Infinity });
    const port = opts.port ?? 4242;
    const bitsPerSecond = rateMbit * 1e6;
    // Burst: 8 ms of traffic (timers wake ~1 ms late) but at least 8 frames.
    const burst = Math.max(8 * WIRE_BYTES_PER_FRAME, (bitsPerSecond / 8) * 0.008);
    const t0 = performance.now();
    const bucket = new TokenBucket(bitsPerSecond, burst, t0);
    const interval = opts.progressIntervalMs ?? 250;
    let lastReport = t0;
    const progress = (done: boolean): CarouselSendProgress => {
      const elapsedMs = performance.now() - t0;
      return {
        size,
        hash,
        frames: tx.sent,
        framesPerPass: tx.framesPerPass,
        passes: tx.progress,
        elapsedMs,
        rateMbit: elapsedMs > 0 ? (tx.sent * WIRE_BYTES_PER_FRAME * 8) / (elapsedMs * 1000) : 0,
        sendErrors: sock?.stats.sendErrors ?? 0,
        done,
      };
    };
    const signal = opts.signal;
    while (!tx.done && !signal?.aborted) {
      const now = performance.now();
      const wait = bucket.take(WIRE_BYTES_PER_FRAME, now);
      if (wait > 0) {
        await sleep(Math.max(1, Math.ceil(wait)), undefined, { signal }).catch(() => {});
        continue;
      }
      const frame = tx.next()!;
      while (!sock.trySend(frame, opts.group, port)) {
        if (sock.closed) break;
        await sock.drain();
      }
      if (now - lastReport >= interval) {
        lastReport = now;
        opts.onProgress?.(progress(false));
        // Let timers and signals run even when the rate never makes us sleep.
        await new Promise<void>((r) => setImmediate(r));
      }
    }
    await sock.drain();
    const result: CarouselSendResult = { ...progress(true), interrupted: !tx.done };
    opts.onProgress?.(result);
    return result;
  } finally {
    await sock?.close();
    closeSync(fd);
  }
}
