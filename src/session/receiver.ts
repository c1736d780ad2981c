// A receiver as an object: give it a channel, an output path and (for signed updates) what the
// device trusts; it emits typed events and settles `done` with the result. Under it: the network
// driver (src/transfer/driver.ts) and the I/O-free FountainReceiver.
import { EventEmitter } from 'node:events';
import { resolveGroup, type ChannelTarget } from '../channel/index.js';
import { checkOutputPath } from '../fsutil/index.js';
import { abortError, asIotupdError, type IotupdError, TimeoutError, UsageError } from '../errors.js';
import type { Manifest } from '../crypto/index.js';
import { receiveFile, type ReceiveResult } from '../transfer/driver.js';
import type { ReceiverMemoryTuning } from '../transfer/heap.js';
import type { ObjectInfo, ReceiverProgress, ReceiverStats } from '../transfer/index.js';
import { receiveSecurity, type ReceiveSecurity, type ReceiveSecurityStage, type SecuritySummary } from './receive-security.js';

export interface ReceiveOptions extends ChannelTarget {
  /** Final path of the object; it appears there only complete and verified. */
  out: string;
  /** Network interface to join on. Required: never a default interface. */
  interface: string;
  port?: number;
  /** Take only this object (its 8-byte id) or only an object announced with this name. */
  objectId?: Uint8Array;
  name?: string;
  /** Spool directory (default `.OUTNAME.iotupd` beside `out`); kept across restarts for resume. */
  spoolDir?: string;
  /** Signed transfer: nothing reaches the disk before a manifest signed under `trust` is verified. */
  security?: ReceiveSecurity;
  /** Give up after this long (rejects with TimeoutError; the spool is kept for resume). */
  timeoutMs?: number;
  /** Where blocks are decoded (see ReceiveFileOptions.decodeOn). */
  decodeOn?: 'auto' | 'worker' | 'inline';
  lowMemory?: boolean;
  /** Process-wide memory settings the caller opted into (tuneReceiverMemory). */
  memory?: ReceiverMemoryTuning;
  /** How often `progress` is emitted (default 250 ms). */
  progressIntervalMs?: number;
  signal?: AbortSignal;
}

export interface ReceiveProgress extends ReceiverProgress {
  stats: ReceiverStats;
}

export interface ReceiveOutcome extends ReceiveResult {
  /** Where the object is. */
  path: string;
  /** The verified manifest (signed transfers only). */
  manifest?: Manifest;
  /** Drops and checks of the security stage (signed transfers only). */
  security?: SecuritySummary;
}

/** The events of a Receiver, with their arguments. */
export interface ReceiverEvents {
  /** The socket joined the group: what is sent from now on reaches this receiver. */
  listening: [group: string];
  /** The object to receive is known (its description arrived, or resumed from the spool). */
  object: [info: ObjectInfo];
  /** A manifest signed under the trust root was verified (signed transfers). */
  manifest: [manifest: Manifest];
  /** Source block `sbn` is complete: whole from source symbols, decoded, or found in the spool on resume. */
  block: [sbn: number];
  progress: [progress: ReceiveProgress];
  complete: [outcome: ReceiveOutcome];
  /** The receive failed; `done` rejects with the same error. */
  error: [err: IotupdError];
}

/**
 * One receive in progress. Errors reject `done` (an AbortError on abort, a TimeoutError after
 * `timeoutMs`); the `error` event is emitted only when someone listens for it.
 */
export class Receiver extends EventEmitter<ReceiverEvents> {
  readonly group: string;
  readonly done: Promise<ReceiveOutcome>;
  #security: ReceiveSecurityStage | undefined;
  #progress: ReceiveProgress | undefined;

  constructor(opts: ReceiveOptions) {
    super();
    if (!opts.out) throw new UsageError('an output path (out) is required');
    if (!opts.interface) throw new UsageError('an interface is required (never a default interface)');
    this.group = resolveGroup(opts);
    // An output that can never be written is a mistake to report now, not after the transfer.
    checkOutputPath(opts.out);
    this.done = this.run(opts);
    // `done` is the caller's; an unobserved rejection must not also crash the process.
    this.done.catch(() => {});
  }

  /** The last progress emitted (also after a failure: what was held when it stopped). */
  get progress(): ReceiveProgress | undefined {
    return this.#progress;
  }

  /** The security stage's drops and checks so far (signed transfers), also after a failure. */
  securitySummary(): SecuritySummary | undefined {
    return this.#security?.summary();
  }

  private async run(opts: ReceiveOptions): Promise<ReceiveOutcome> {
    const ac = new AbortController();
    const onAbort = () => ac.abort(abortError(opts.signal));
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    if (opts.signal?.aborted) onAbort();
    const timer = opts.timeoutMs === undefined ? undefined : setTimeout(() => ac.abort(new TimeoutError(`no complete object within ${opts.timeoutMs! / 1000} s (the spool is kept for resume)`)), opts.timeoutMs);
    timer?.unref();
    try {
      // Deferred to the next turn so that listeners attached right after construction see every event.
      await Promise.resolve();
      const sec = (this.#security = opts.security
        ? receiveSecurity(opts.security, (m) => this.emit('manifest', m))
        : undefined);
      const result = await receiveFile({
        out: opts.out,
        group: this.group,
        interface: opts.interface,
        ...(opts.port !== undefined ? { port: opts.port } : {}),
        ...(opts.objectId ? { objectId: opts.objectId } : {}),
        ...(opts.name !== undefined ? { name: opts.name } : {}),
        ...(opts.spoolDir !== undefined ? { spoolDir: opts.spoolDir } : {}),
        ...(opts.decodeOn ? { decodeOn: opts.decodeOn } : {}),
        ...(opts.lowMemory ? { lowMemory: true } : {}),
        ...(opts.memory ? { memory: opts.memory } : {}),
        ...(sec ? { filter: sec.filter, checkBlock: sec.checkBlock } : {}),
        signal: ac.signal,
        progressIntervalMs: opts.progressIntervalMs ?? 250,
        onListening: () => this.emit('listening', this.group),
        onObject: (info) => this.emit('object', info),
        onBlock: (sbn) => this.emit('block', sbn),
        onProgress: (p, stats) => {
          const progress = { ...p, stats };
          this.#progress = progress;
          this.emit('progress', progress);
        },
      });
      const outcome: ReceiveOutcome = { ...result, path: opts.out };
      if (sec) {
        outcome.manifest = sec.commit(opts.out, result.info);
        outcome.security = sec.summary();
      }
      this.emit('complete', outcome);
      return outcome;
    } catch (err) {
      const e = asIotupdError(err);
      // `done` rejects with it; the event is for observers, so no listener is no crash.
      if (this.listenerCount('error') > 0) this.emit('error', e);
      throw e;
    } finally {
      if (timer) clearTimeout(timer);
      opts.signal?.removeEventListener('abort', onAbort);
    }
  }
}

/** Start receiving one object; see Receiver. */
export function receive(opts: ReceiveOptions): Receiver {
  return new Receiver(opts);
}
