// A sender as an object: give it a file, a channel and (for signed releases) a signing key; it
// emits typed events and settles `done`. Under it: the send pipeline (src/transfer/pipeline.ts)
// paced once by the network driver (src/transfer/driver.ts).
import { EventEmitter } from 'node:events';
import { resolveGroup, type ChannelTarget } from '../channel/index.js';
import { asIotupdError, type IotupdError, UsageError } from '../errors.js';
import { sendFile, type SendFileResult } from '../transfer/driver.js';
import { SendGate } from '../transfer/gate.js';
import type { SenderStats } from '../transfer/sender.js';
import type { Oti } from '../fec/index.js';
import { HashAlgorithm } from '../wire/fountain.js';
import type { SendSecurity } from './send-security.js';

export interface SendOptions extends ChannelTarget {
  /** The file to send. */
  file: string;
  /** Network interface to send on. Required: never a default interface. */
  interface: string;
  port?: number;
  hopLimit?: number;
  /** Bits per second on the wire, IPv6 and UDP headers included (default 20 Mbit/s). */
  rateBps?: number;
  /** Stop after this long; default: until `signal` aborts or `symbolsPerBlock` is reached. */
  durationMs?: number;
  /** Stop after this many symbols per source block (e.g. K plus a margin). */
  symbolsPerBlock?: number;
  /** Cooperating senders: this one's index among `senders` (disjoint symbols). */
  senderIndex?: number;
  senders?: number;
  /** Bytes per symbol (default 1220: packets fit a 1280-byte IPv6 MTU). */
  symbolSize?: number;
  /** Upper bound on source symbols per block (default 2048). */
  maxBlockSymbols?: number;
  /** Object name announced to receivers (default: the file's name). */
  name?: string;
  /** Whole-object hash (default sha256; signed releases need sha256). */
  hash?: 'sha256' | 'blake3';
  /** Signed manifest, group-key tags or encryption, signed digest batches. */
  security?: SendSecurity;
  /** How often `progress` is emitted (default 500 ms). */
  progressIntervalMs?: number;
  signal?: AbortSignal;
}

/** What receivers will learn about the object, once the file is hashed. */
export interface SendStart {
  objectId: Uint8Array;
  oti: Oti;
  blocks: number;
  group: string;
  port: number;
}

export interface SenderEvents {
  /** The file is hashed and the socket is ready: the first datagram goes next. */
  start: [start: SendStart];
  progress: [stats: SenderStats];
  /** The symbol or time budget is spent; `done` resolves with the same result. */
  complete: [result: SendFileResult];
  /** The send failed; `done` rejects with the same error (an AbortError on abort). */
  error: [err: IotupdError];
}

/**
 * One send in progress. Without a duration or symbol budget it runs until `signal` aborts; `done`
 * then rejects with an AbortError, as a receive does. The last counts stay in `stats`.
 */
export class Sender extends EventEmitter<SenderEvents> {
  readonly group: string;
  readonly done: Promise<SendFileResult>;
  #stats: SenderStats | undefined;
  #result: SendFileResult | undefined;
  readonly #gate = new SendGate();

  constructor(opts: SendOptions) {
    super();
    if (!opts.file) throw new UsageError('a file to send is required');
    if (!opts.interface) throw new UsageError('an interface is required (never a default interface)');
    this.group = resolveGroup(opts);
    this.done = this.run(opts);
    this.done.catch(() => {});
  }

  /** The sender's counts at the last progress event (also after an abort or a failure). */
  get stats(): SenderStats | undefined {
    return this.#stats;
  }

  /**
   * Stop sending until resume(), keeping the place in the symbol schedule: receivers that stay
   * joined get new symbols when it resumes. A duration (`durationMs`) keeps running meanwhile.
   */
  pause(): void {
    this.#gate.pause();
  }

  resume(): void {
    this.#gate.resume();
  }

  get paused(): boolean {
    return this.#gate.paused;
  }

  /** The final counts and socket figures once sending stopped, also when aborted. */
  get result(): SendFileResult | undefined {
    return this.#result;
  }

  private async run(opts: SendOptions): Promise<SendFileResult> {
    const port = opts.port ?? 4242;
    try {
      // Deferred to the next turn so that listeners attached right after construction see every event.
      await Promise.resolve();
      const result = await sendFile({
        file: opts.file,
        group: this.group,
        interface: opts.interface,
        port,
        ...(opts.hopLimit !== undefined ? { hopLimit: opts.hopLimit } : {}),
        ...(opts.rateBps !== undefined ? { rateBps: opts.rateBps } : {}),
        ...(opts.durationMs !== undefined ? { durationMs: opts.durationMs } : {}),
        ...(opts.symbolsPerBlock !== undefined ? { symbolsPerBlock: opts.symbolsPerBlock } : {}),
        ...(opts.senderIndex !== undefined ? { senderIndex: opts.senderIndex } : {}),
        ...(opts.senders !== undefined ? { senders: opts.senders } : {}),
        ...(opts.symbolSize !== undefined ? { symbolSize: opts.symbolSize } : {}),
        ...(opts.maxBlockSymbols !== undefined ? { maxBlockSymbols: opts.maxBlockSymbols } : {}),
        ...(opts.name !== undefined ? { name: opts.name } : {}),
        ...(opts.hash === 'blake3' ? { hashAlgorithm: HashAlgorithm.BLAKE3 } : {}),
        ...(opts.security ? { security: opts.security } : {}),
        ...(opts.signal ? { signal: opts.signal } : {}),
        gate: this.#gate,
        progressIntervalMs: opts.progressIntervalMs ?? 500,
        onStart: (s) => this.emit('start', { objectId: s.objectId, oti: s.oti, blocks: s.blockCount, group: this.group, port }),
        onProgress: (stats) => {
          this.#stats = { ...stats };
          this.emit('progress', this.#stats);
        },
        onEnd: (result) => {
          this.#result = result;
        },
      });
      this.emit('complete', result);
      return result;
    } catch (err) {
      const e = asIotupdError(err);
      // `done` rejects with it; the event is for observers, so no listener is no crash.
      if (this.listenerCount('error') > 0) this.emit('error', e);
      throw e;
    }
  }
}

/** Start sending a file; see Sender. */
export function send(opts: SendOptions): Sender {
  return new Sender(opts);
}
