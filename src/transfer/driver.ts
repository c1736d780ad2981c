import { setTimeout as sleep } from 'node:timers/promises';
import { otiFor } from '../fec/index.js';
import { McastSocket, DEFAULT_PORT } from '../net/index.js';
import { DEFAULT_SYMBOL_SIZE, HashAlgorithm } from '../wire/fountain.js';
import { IotupdError, UsageError } from '../errors.js';
import { hashFile } from './object.js';
import { FountainReceiver, type ReceiverOptions, type ReceiverProgress, type ReceiverStats, type ObjectInfo } from './receiver.js';
import { FountainSender, type PacketSealer, type SenderStats } from './sender.js';
import { FileSource } from './source.js';

export const DEFAULT_BLOCK_SYMBOLS = 4096;

export interface SendFileOptions {
  file: string;
  group: string;
  interface: string;
  port?: number;
  hopLimit?: number;
  /** Bits per second, counting IPv6 and UDP headers. */
  rateBps?: number;
  symbolSize?: number;
  /** Upper bound on K per source block (default 4096, more when the object needs it for Z <= 255). */
  maxBlockSymbols?: number;
  senderIndex?: number;
  senders?: number;
  durationMs?: number;
  symbolsPerBlock?: number;
  name?: string;
  hashAlgorithm?: number;
  startRound?: number;
  sealer?: PacketSealer;
  signal?: AbortSignal;
  /** Called about every `progressIntervalMs` (default 500 ms) and at the end. */
  onProgress?: (s: SenderStats, sender: FountainSender) => void;
  progressIntervalMs?: number;
}

/** Prepare a FountainSender for a file: hash it (streaming), choose the OTI, derive the object id. */
export function createFileSender(opts: Omit<SendFileOptions, 'group' | 'interface'>): FountainSender {
  const source = new FileSource(opts.file);
  if (source.size === 0) {
    source.close();
    throw new UsageError(`${opts.file} is empty: RaptorQ needs at least one byte (RFC 6330 3.3.2)`);
  }
  const hashAlgorithm = opts.hashAlgorithm ?? HashAlgorithm.SHA256;
  const hash = hashFile(hashAlgorithm, opts.file, source.size);
  const T = opts.symbolSize ?? DEFAULT_SYMBOL_SIZE;
  // K = 4096 decodes fastest here (docs/protocol.md); larger objects get larger blocks to stay within Z <= 255.
  const maxK = opts.maxBlockSymbols ?? Math.max(DEFAULT_BLOCK_SYMBOLS, Math.ceil(Math.ceil(source.size / T) / 255));
  const oti = otiFor(source.size, T, { maxBlockSymbols: maxK, subBlocks: 1, alignment: 4 });
  return new FountainSender({
    oti,
    source,
    hash,
    hashAlgorithm,
    name: opts.name ?? opts.file.split('/').pop() ?? '',
    rateBps: opts.rateBps,
    senderIndex: opts.senderIndex,
    senders: opts.senders,
    durationMs: opts.durationMs,
    symbolsPerBlock: opts.symbolsPerBlock,
    startRound: opts.startRound,
    sealer: opts.sealer,
  });
}

/** Send a file by fountain code until the duration / symbol budget ends or `signal` aborts. */
export async function sendFile(opts: SendFileOptions): Promise<SenderStats> {
  const sender = createFileSender(opts);
  const port = opts.port ?? DEFAULT_PORT;
  const sock = await McastSocket.open({ interface: opts.interface, port: 0, hopLimit: opts.hopLimit, signal: opts.signal });
  const every = opts.progressIntervalMs ?? 500;
  let lastReport = performance.now();
  let sinceYield = 0;
  try {
    // Send-only socket: connecting skips the per-datagram address parsing and route lookup.
    await sock.connect(opts.group, port);
    for (;;) {
      if (opts.signal?.aborted) break;
      const now = performance.now();
      const step = sender.next(now);
      if ('done' in step) break;
      if ('wait' in step) {
        // The token bucket holds several ms of traffic, so 1 ms timer granularity costs nothing.
        await sleep(Math.max(1, Math.min(step.wait, 1000)), undefined, { ref: true }).catch(() => undefined);
        sinceYield = 0;
      } else {
        while (!sock.trySend(step.datagram, opts.group, port)) {
          if (sock.closed) throw new IotupdError('ERR_SOCKET', 'socket closed while sending');
          await sock.drain();
        }
        if (++sinceYield >= 64) {
          // Let signals, timers and socket callbacks run.
          sinceYield = 0;
          await new Promise<void>((r) => setImmediate(r));
        }
      }
      if (opts.onProgress && now - lastReport >= every) {
        lastReport = now;
        opts.onProgress(sender.stats, sender);
      }
    }
    await sock.drain();
  } finally {
    opts.onProgress?.(sender.stats, sender);
    await sock.close();
  }
  return sender.stats;
}

export interface ReceiveFileOptions extends ReceiverOptions {
  group: string;
  interface: string;
  port?: number;
  signal?: AbortSignal;
  onProgress?: (p: ReceiverProgress, stats: ReceiverStats) => void;
  progressIntervalMs?: number;
}

export interface ReceiveResult {
  info: ObjectInfo;
  stats: ReceiverStats;
  overhead: number;
}

/** Receive one object into `out`; resolves when it is complete and verified, rejects on abort or storage errors. */
export async function receiveFile(opts: ReceiveFileOptions): Promise<ReceiveResult> {
  const receiver = new FountainReceiver(opts);
  const sock = await McastSocket.open({ interface: opts.interface, port: opts.port ?? DEFAULT_PORT, bindAddress: opts.group, signal: opts.signal });
  let timer: NodeJS.Timeout | undefined;
  try {
    sock.join(opts.group);
    return await new Promise<ReceiveResult>((resolve, reject) => {
      const finish = () => resolve({ info: receiver.info as ObjectInfo, stats: receiver.stats, overhead: receiver.overhead });
      if (receiver.isComplete) {
        finish();
        return;
      }
      const onAbort = () => reject(opts.signal?.reason instanceof Error ? opts.signal.reason : new IotupdError('ERR_INTERRUPTED', 'interrupted'));
      opts.signal?.addEventListener('abort', onAbort, { once: true });
      if (opts.signal?.aborted) onAbort();
      if (opts.onProgress) {
        timer = setInterval(() => opts.onProgress?.(receiver.progress(), receiver.stats), opts.progressIntervalMs ?? 250);
      }
      sock.onMessage((d) => {
        try {
          if (receiver.push(d.data) === 'complete') {
            sock.onMessage(undefined);
            finish();
          }
        } catch (err) {
          sock.onMessage(undefined);
          reject(err);
        }
      });
    });
  } finally {
    if (timer) clearInterval(timer);
    if (!receiver.isComplete) receiver.close();
    opts.onProgress?.(receiver.progress(), receiver.stats);
    await sock.close();
  }
}
