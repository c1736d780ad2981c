import { setTimeout as sleep } from 'node:timers/promises';
import { blockPartition, otiFor, type Oti } from '../fec/index.js';
import { McastSocket, DEFAULT_PORT, GSO_MAX_SEGMENTS } from '../net/index.js';
import { DEFAULT_SYMBOL_SIZE, HashAlgorithm, type Sealer } from '../wire/fountain.js';
import { IotupdError, UsageError, abortError } from '../errors.js';
import { hashFile } from './object.js';
import { FileStore, FountainReceiver, type FileStoreOptions, type ReceiverOptions, type ReceiverProgress, type ReceiverStats, type ObjectInfo } from './receiver/index.js';
import { FountainSender, repairBlocks, type SenderStats } from './sender.js';
import { SendPipeline, type SendStage } from './pipeline.js';
import type { SendGate } from './gate.js';
import type { SendSecurity } from '../session/send-security.js';
import { FileSource } from './source.js';
import { InlineDecoder, WorkerDecoder } from './decoding.js';
import { recordEncoderPlans, type PlanRecording } from './plans.js';
import type { ReceiverMemoryTuning } from './heap.js';

export const DEFAULT_BLOCK_SYMBOLS = 2048;

/** What createFileSender needs: the file, the OTI choice, the sender's schedule. */
export interface FileSenderOptions {
  file: string;
  symbolSize?: number;
  /** Upper bound on K per source block (default 2048, more when the object needs it for Z <= 255). */
  maxBlockSymbols?: number;
  senderIndex?: number;
  senders?: number;
  durationMs?: number;
  symbolsPerBlock?: number;
  name?: string;
  hashAlgorithm?: number;
  startRound?: number;
  /** Fills the trailer of every packet the FountainSender builds (the security layer's tag). */
  sealer?: Sealer;
  /**
   * Sees the file's bytes in order during the one pass that hashes it, once the OTI is chosen
   * (the security layer computes its per-block commitments there instead of reading the file again).
   */
  observe?: (oti: Oti) => (chunk: Uint8Array) => void;
}

export interface SendFileOptions extends Omit<FileSenderOptions, 'sealer' | 'observe'> {
  group: string;
  interface: string;
  port?: number;
  hopLimit?: number;
  /** Bits per second, counting IPv6 and UDP headers: the pipeline's one token bucket (pacer.ts). */
  rateBps?: number;
  /** Token bucket depth in bytes (default: 4 ms at the rate, at least 8 datagrams). */
  burstBytes?: number;
  /**
   * Signed manifest, group-key tags or encryption, signed digest batches (src/session/send-security.ts):
   * the security stage of the pipeline. Loaded only when given.
   */
  security?: SendSecurity;
  signal?: AbortSignal;
  /** While this gate is paused, nothing is sent; the transfer resumes where it stopped. */
  gate?: SendGate;
  /** Called once the file is hashed and the socket is ready, before the first datagram. */
  onStart?: (sender: FountainSender) => void;
  /** Called with the final counts when sending stops, also when the signal stopped it. */
  onEnd?: (result: SendFileResult) => void;
  /** Called about every `progressIntervalMs` (default 500 ms) and at the end. */
  onProgress?: (s: SenderStats, sender: FountainSender) => void;
  progressIntervalMs?: number;
}

/** The OTI a sender chooses for an object of `size` bytes. */
function fileOti(size: number, opts: Pick<FileSenderOptions, 'symbolSize' | 'maxBlockSymbols'>): Oti {
  const T = opts.symbolSize ?? DEFAULT_SYMBOL_SIZE;
  // K = 2048 decodes fastest, with little memory (docs/decisions/0002-block-size.md); larger objects get larger blocks so that Z <= 255.
  const maxK = opts.maxBlockSymbols ?? Math.max(DEFAULT_BLOCK_SYMBOLS, Math.ceil(Math.ceil(size / T) / 255));
  return otiFor(size, T, { maxBlockSymbols: maxK, subBlocks: 1, alignment: 4 });
}

/**
 * Prepare a FountainSender for a file: hash it (streaming), choose the OTI, derive the object id.
 * `onOti` sees the OTI before the hashing pass (sendFile records the encoder plans meanwhile).
 */
export async function createFileSender(opts: FileSenderOptions, onOti?: (oti: Oti) => void): Promise<FountainSender> {
  const source = new FileSource(opts.file);
  if (source.size === 0) {
    source.close();
    throw new UsageError(`${opts.file} is empty: RaptorQ needs at least one byte (RFC 6330 3.3.2)`);
  }
  const hashAlgorithm = opts.hashAlgorithm ?? HashAlgorithm.SHA256;
  const oti = fileOti(source.size, opts);
  onOti?.(oti);
  let hash: Uint8Array;
  try {
    hash = await hashFile(hashAlgorithm, opts.file, source.size, opts.observe?.(oti));
  } catch (err) {
    source.close();
    throw err;
  }
  return new FountainSender({
    oti,
    source,
    hash,
    hashAlgorithm,
    name: opts.name ?? opts.file.split('/').pop() ?? '',
    senderIndex: opts.senderIndex,
    senders: opts.senders,
    durationMs: opts.durationMs,
    symbolsPerBlock: opts.symbolsPerBlock,
    startRound: opts.startRound,
    sealer: opts.sealer,
  });
}

/** What sendFile did: the sender's counts and how the socket sent them. */
export interface SendFileResult extends SenderStats {
  /** 'on' when runs of datagrams went out by UDP GSO, else why not (McastSocket.gso). */
  gso: string;
  /** sendmsg calls that carried several datagrams. */
  gsoCalls: number;
  /** Send failures the socket saw (sampled on the one-by-one path). */
  sendErrors: number;
  /** Encoder plans recorded in a worker thread while the file was hashed (recordEncoderPlans). */
  encoderPlansRecorded: number;
}

/**
 * Send a file by fountain code until the duration / symbol budget ends or `signal` aborts. The
 * datagrams come from a SendPipeline (pipeline.ts): the FountainSender, then the security stage
 * when `security` is given, paced once by the pipeline's token bucket.
 */
export async function sendFile(opts: SendFileOptions): Promise<SendFileResult> {
  // Validated before the file is hashed; the cryptography is loaded only for a secure transfer.
  const security = opts.security ? (await import('../session/send-security.js')).planSendSecurity(opts.security) : undefined;
  // The encoder plans are recorded in a worker while this thread hashes the file.
  let plans: PlanRecording | undefined;
  let sender: FountainSender;
  try {
    const fileOpts: FileSenderOptions = { ...opts, ...(security?.sealer ? { sealer: security.sealer } : {}), ...(security?.observe ? { observe: security.observe } : {}) };
    sender = await createFileSender(fileOpts, (oti) => {
      const ks = repairBlocks(blockPartition(oti), opts).map((b) => b.k);
      if (ks.length > 0) plans = recordEncoderPlans(ks);
    });
  } catch (err) {
    plans?.cancel();
    throw err;
  }
  // The source round does not need the plans: sending starts while the worker finishes them.
  // Encoders are prepared once they are in, and a block encoder is not built before.
  let plansIn = plans === undefined;
  void plans?.done.then(() => {
    plansIn = true;
  });
  const stages: SendStage[] = security ? [security.stage] : [];
  let pipeline: SendPipeline;
  try {
    pipeline = new SendPipeline(sender, { rateBps: opts.rateBps, burstBytes: opts.burstBytes, stages });
  } catch (err) {
    plans?.cancel();
    throw err;
  }
  const port = opts.port ?? DEFAULT_PORT;
  if (opts.signal?.aborted) {
    plans?.cancel();
    sender.close();
    throw abortError(opts.signal);
  }
  let sock: McastSocket;
  try {
    sock = await McastSocket.open({ interface: opts.interface, port: 0, hopLimit: opts.hopLimit, signal: opts.signal });
  } catch (err) {
    plans?.cancel();
    sender.close();
    throw err;
  }
  const every = opts.progressIntervalMs ?? 500;
  let lastReport = performance.now();
  // Datagrams the pacer released, handed to the socket together: with UDP GSO a run of
  // equal-size datagrams costs one system call instead of one each (McastSocket.sendBurst).
  const burst: Uint8Array[] = [];
  const flush = async (): Promise<boolean> => {
    let at = 0;
    while (at < burst.length) {
      const k = sock.sendBurst(burst, at, burst.length, opts.group, port);
      if (k > 0) {
        at += k;
        continue;
      }
      if (sock.closed) {
        burst.length = 0;
        // Aborting closes the socket (McastSocket.open's signal): a clean stop, not an error.
        if (opts.signal?.aborted) return false;
        throw new IotupdError('ERR_SOCKET', 'socket closed while sending');
      }
      await sock.drain();
    }
    burst.length = 0;
    // Let signals, timers and socket callbacks run.
    await new Promise<void>((r) => setImmediate(r));
    return true;
  };
  try {
    // Send-only socket: connecting skips the per-datagram address parsing and route lookup.
    await sock.connect(opts.group, port);
    opts.onStart?.(sender);
    for (;;) {
      if (opts.signal?.aborted) break;
      if (opts.gate?.paused) {
        if (burst.length > 0 && !(await flush())) break;
        await opts.gate.whenOpen(opts.signal);
        continue;
      }
      if (!plansIn && pipeline.nextBuildsEncoder) {
        if (burst.length > 0 && !(await flush())) break;
        await plans?.done;
      }
      const now = performance.now();
      const step = pipeline.next(now);
      if ('datagram' in step) {
        burst.push(step.datagram);
        // Send what we hold before the sender builds a block encoder (a precode solve of many
        // milliseconds at K = 2048): otherwise the datagrams gathered so far would wait for the
        // next ones' encoders, up to 63 of them at the start of the repair phase.
        if ((burst.length >= GSO_MAX_SEGMENTS || pipeline.nextBuildsEncoder) && !(await flush())) break;
      } else {
        if (burst.length > 0 && !(await flush())) break;
        if ('done' in step) break;
        // Nothing to send yet: build a slice of the repair round's encoders meanwhile (each well
        // under a millisecond, inside the token bucket's few ms), and let other callbacks run.
        if (plansIn && pipeline.prepare()) {
          await new Promise<void>((r) => setImmediate(r));
          continue;
        }
        // The token bucket holds several ms of traffic, so 1 ms timer granularity costs nothing.
        await sleep(Math.max(1, Math.min(step.wait, 1000)), undefined, { ref: true }).catch(() => undefined);
      }
      if (opts.onProgress && now - lastReport >= every) {
        lastReport = now;
        opts.onProgress(sender.stats, sender);
      }
    }
    if (!sock.closed) await sock.drain();
  } finally {
    // A sender that stopped before the worker posted its plans (a short --duration) stops it.
    if (!plansIn) plans?.cancel();
    opts.onProgress?.(sender.stats, sender);
    sender.close();
    await sock.close();
  }
  const gso = sock.gso;
  const result: SendFileResult = { ...sender.stats, gso: gso.enabled ? 'on' : gso.reason, gsoCalls: sock.stats.gsoCalls, sendErrors: sock.stats.sendErrors, encoderPlansRecorded: plans?.adopted ?? 0 };
  opts.onEnd?.(result);
  // A stop by the signal rejects, as a receive does; onEnd has seen the final counts.
  if (opts.signal?.aborted) throw abortError(opts.signal);
  return result;
}

/** The object goes to `out` through the spool (FileStore). */
export interface ReceiveFileOptions extends Omit<ReceiverOptions, 'store'>, FileStoreOptions {
  group: string;
  interface: string;
  port?: number;
  signal?: AbortSignal;
  onProgress?: (p: ReceiverProgress, stats: ReceiverStats) => void;
  progressIntervalMs?: number;
  /** Called once the socket has joined the group: datagrams sent from now on reach this receiver. */
  onListening?: () => void;
  /** Security hook: returns the datagram the receiver may see (decrypted), or null to drop it. */
  filter?: (datagram: Uint8Array) => Uint8Array | null;
  /**
   * Process-wide memory settings the caller opted into (tuneReceiverMemory): checked every few
   * thousand datagrams and after each decode. Without it the receiver changes nothing process-wide.
   */
  memory?: ReceiverMemoryTuning;
  /**
   * Where blocks are decoded (unless `decoder` is given): 'worker' (a thread of its own), 'inline'
   * (on the receiving thread: one isolate, less memory, reception waits during each decode) or
   * 'auto' (default): inline when the socket's receive buffer holds at least
   * INLINE_DECODE_MIN_RCVBUF bytes, which absorbs the datagrams of a decode, else a worker.
   */
  decodeOn?: 'auto' | 'worker' | 'inline';
  /** Decode inline and scavenge more often: the least memory. */
  lowMemory?: boolean;
  /**
   * Warm the inline decoder up once loss is seen, while symbols still arrive: WARM_UP_DECODES
   * synthetic decodes at the object's K and T (InlineDecoder.warmUp). Default true, false with
   * `lowMemory`: the optimized solver's code, early in the transfer, grows V8's heap and raises
   * a low-memory receiver's peak (docs/decisions/0005-inline-decoding.md, "Consequences").
   */
  warmUp?: boolean;
}

/**
 * Usable receive buffer (half of what the kernel reports) from which 'auto' decodes inline:
 * 4 MiB holds 85 ms of datagrams at 400 Mbit/s, several block decodes at K = 2048 (20-30 ms
 * each). Below it (a device's default rmem_max of ~200 KiB is 4 ms at that rate) a worker
 * keeps draining the socket while blocks decode. Where the buffer allows it, inline decoding
 * finishes sooner and with less memory than a worker (docs/decisions/0005-inline-decoding.md).
 */
export const INLINE_DECODE_MIN_RCVBUF = 4 * 1024 * 1024;

export interface ReceiveResult {
  info: ObjectInfo;
  stats: ReceiverStats;
  overhead: number;
  /** Times the receiver left the group while it held all the symbols its decodes needed. */
  pauses: number;
  /** Where blocks were decoded: a worker thread, or inline on the receiving thread. */
  decoder: 'worker' | 'inline';
  /** Synthetic decodes run to warm the inline decoder up once loss was seen (InlineDecoder.warmUp). */
  warmUps: number;
  /** The largest young generation seen (both semi-spaces, MiB); 0 without `memory` tuning. */
  youngGenerationMiB: number;
  /** 'on' while the young-generation cap held, else why not ('not requested' without `memory`). */
  youngGenerationCap: string;
  /** 'on' when glibc's malloc arenas were bounded (`memory` tuning), else why not. */
  mallocArenaLimit: string;
  /** Whether some block had to be decoded: a source symbol was missed, or a repair symbol kept (FountainReceiver.lossSeen). */
  lossSeen: boolean;
  /** 'on' when datagrams were read by recvmmsg() in batches (McastSocket.onDatagrams), else why not. */
  recvBatch: string;
  /** The socket's receive buffer as the kernel reports it (twice the usable size on Linux). */
  recvBufferBytes: number;
}

/**
 * Datagrams between two checks of the young-generation cap (youngGenerationCap). About 100 KB of
 * young objects, a tenth of a 1 MiB semi-space: V8 cannot grow it twice in between. Checked much
 * more often, the checks themselves would take a noticeable share of a receiver's CPU.
 */
const YOUNG_CHECK_EVERY = 1024;

/** How often the driver checks whether the receiver can use symbols (FountainReceiver.saturated). */
const SATURATION_CHECK_MS = 20;

/** Receive one object into `out`; resolves when it is complete and verified, rejects on abort or storage errors. */
export async function receiveFile(opts: ReceiveFileOptions): Promise<ReceiveResult> {
  const memory = opts.memory;
  // A block decode leaves ~2 K*T bytes of dead buffers (the gathered job, the decoded block),
  // young objects holding external memory: a scavenge right after it keeps the peak near one
  // block's working set, for far less than a full collection.
  let resolveDone: () => void = () => {};
  let rejectDone: (err: unknown) => void = () => {};
  const completed = new Promise<void>((resolve, reject) => {
    resolveDone = resolve;
    rejectDone = reject;
  });
  completed.catch(() => {});
  const sock = await McastSocket.open({ interface: opts.interface, port: opts.port ?? DEFAULT_PORT, bindAddress: opts.group, signal: opts.signal });
  // Decodes run on this thread when the socket can hold the datagrams that arrive meanwhile
  // (one isolate, one job buffer), else in a worker thread so that reception never stalls.
  const on = opts.lowMemory ? 'inline' : (opts.decodeOn ?? 'auto');
  const inline = on === 'inline' || (on === 'auto' && sock.recvBufferSize / 2 >= INLINE_DECODE_MIN_RCVBUF);
  const decoder = opts.decoder ?? (inline ? new InlineDecoder() : new WorkerDecoder(1));
  if (decoder instanceof WorkerDecoder || decoder instanceof InlineDecoder) decoder.onError = (err) => rejectDone(err);
  // Leave the group while every unfinished block is decoding with spare symbols; join again as
  // soon as one needs more (a failed decode) or a new object starts (after a hash mismatch).
  let started = false;
  let joined = false;
  let pauses = 0;
  let receiver: FountainReceiver;
  try {
    receiver = new FountainReceiver({
      ...opts,
      store: new FileStore(opts),
      decoder,
      afterDecode: () => {
        memory?.check();
        if (memory?.scavenge) memory.scavenge();
        else opts.afterDecode?.();
        // The moment the last blocks have what their decodes need, stop taking traffic.
        follow();
      },
      onComplete: () => resolveDone(),
      onError: (err) => rejectDone(err),
    });
  } catch (err) {
    await decoder.close();
    await sock.close();
    throw err;
  }
  let timer: NodeJS.Timeout | undefined;
  let follower: NodeJS.Timeout | undefined;
  // A receiver that loses nothing never decodes: it warms the decoder up only once loss is seen.
  let warm = decoder instanceof InlineDecoder && (opts.warmUp ?? !opts.lowMemory);
  function follow(): void {
    // Not before the receiver exists and the first join (a decode may finish in its constructor).
    if (!started || sock.closed) return;
    const info = receiver.info;
    if (warm && info && receiver.lossSeen && !receiver.isComplete) {
      warm = false;
      (decoder as InlineDecoder).warmUp(Math.max(...blockPartition(info.oti).map((b) => b.k)), info.oti.symbolSize);
    }
    const want = !receiver.saturated;
    if (want === joined) return;
    if (want) sock.join(opts.group);
    else {
      sock.leave(opts.group);
      pauses += 1;
    }
    joined = want;
    if (decoder instanceof InlineDecoder) decoder.setReceiving(joined);
  }
  const gc = memory?.scavenge;
  const gcEvery = memory?.scavengeEvery ?? 0;
  let sinceGc = 0;
  let sinceCap = 0;
  const onAbort = () => rejectDone(abortError(opts.signal));
  try {
    sock.join(opts.group);
    joined = true;
    started = true;
    opts.onListening?.();
    if (decoder instanceof InlineDecoder) decoder.setReceiving(true);
    follower = setInterval(follow, SATURATION_CHECK_MS);
    if (receiver.isComplete) resolveDone();
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    if (opts.signal?.aborted) onAbort();
    if (opts.onProgress) timer = setInterval(() => opts.onProgress?.(receiver.progress(), receiver.stats), opts.progressIntervalMs ?? 250);
    // Each datagram is ours to keep or modify (the security filter may decrypt it in place).
    sock.onDatagrams((datagram) => {
      if (memory && ++sinceCap >= YOUNG_CHECK_EVERY) {
        sinceCap = 0;
        memory.check();
      }
      if (gc && ++sinceGc >= gcEvery) {
        sinceGc = 0;
        gc();
      }
      try {
        // Security hook: authenticate / decrypt / hold back before the receiver sees anything.
        const data = opts.filter ? opts.filter(datagram) : datagram;
        if (data && receiver.push(data, performance.now()) === 'complete') resolveDone();
      } catch (err) {
        rejectDone(err);
      }
    });
    const batch = sock.recvBatch;
    await completed;
    return {
      info: receiver.info as ObjectInfo,
      stats: receiver.stats,
      overhead: receiver.overhead,
      pauses,
      decoder: decoder instanceof InlineDecoder ? 'inline' : 'worker',
      warmUps: decoder instanceof InlineDecoder ? decoder.warmUps : 0,
      youngGenerationMiB: memory?.youngGenerationMiB ?? 0,
      youngGenerationCap: memory?.youngGenerationCap ?? 'not requested',
      mallocArenaLimit: memory?.mallocArenaLimit ?? 'not requested',
      lossSeen: receiver.lossSeen,
      recvBatch: batch.enabled ? 'on' : batch.reason,
      recvBufferBytes: sock.recvBufferSize,
    };
  } finally {
    sock.onDatagrams(undefined);
    opts.signal?.removeEventListener('abort', onAbort);
    if (timer) clearInterval(timer);
    if (follower) clearInterval(follower);
    if (!receiver.isComplete) receiver.close();
    opts.onProgress?.(receiver.progress(), receiver.stats);
    await decoder.close();
    await sock.close();
  }
}
