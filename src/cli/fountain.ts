// The fountain format's `iotupd send` / `iotupd recv` (the default format).
// src/cli/commands/{send,recv}.ts dispatch here unless `--format iotupd` is given.
import { readFileSync } from 'node:fs';
import { resolveGroup, type ChannelTarget, type Scheme, type Scope } from '../channel/index.js';
import { Receiver } from '../session/receiver.js';
import { blockPartition } from '../fec/index.js';
import { numberOption, parse } from './command.js';
import { AbortError, IotupdError, TimeoutError, UsageError } from '../errors.js';
import { DEFAULT_SYMBOL_SIZE, objectIdHex, parseObjectIdHex, maxSymbolSize } from '../wire/fountain.js';
import type { SenderStats } from '../transfer/sender.js';
import { DEFAULT_RATE_BPS } from '../transfer/pacer.js';
import { Sender } from '../session/sender.js';
import { tuneReceiverMemory } from '../transfer/heap.js';
import type { ReceiverStats } from '../transfer/receiver/index.js';
import { Progress, formatBytes } from './progress.js';
import { SECURE_RECV_OPTIONS, SECURE_RECV_USAGE, SECURE_SEND_OPTIONS, SECURE_SEND_USAGE, usesSecurity } from './secure-options.js';

const channelOptions = {
  channel: { type: 'string' },
  group: { type: 'string' },
  interface: { type: 'string' },
  port: { type: 'string' },
  scheme: { type: 'string' },
  scope: { type: 'string' },
  json: { type: 'boolean' },
  format: { type: 'string' },
} as const;

export const SEND_USAGE = `usage: iotupd send FILE --channel NAME --interface IF [options]

Fountain format (default): RaptorQ-coded symbols, receivers may join at any time.
  --rate MBIT            pacing in Mbit/s incl. IPv6/UDP headers (default ${DEFAULT_RATE_BPS / 1e6})
  --duration SEC         stop after SEC seconds (default: run until interrupted)
  --symbols-per-block N  stop after N symbols per source block (e.g. K plus margin)
  --sender-index I --senders N   cooperate with other senders (disjoint symbols)
  --symbol-size T        bytes per symbol (default ${DEFAULT_SYMBOL_SIZE}: packets fit 1280 bytes)
  --block-symbols K      maximum source symbols per block (default 2048)
  --name NAME            object name announced to receivers (default: file name)
  --hash sha256|blake3   whole-object hash (default sha256)
  --group ADDR           explicit multicast group instead of --channel
  --port P --scheme librecast|sha3 --scope link|site|org|global --json
  --format fountain|iotupd

${SECURE_SEND_USAGE}`;

export const RECV_USAGE = `usage: iotupd recv OUT --channel NAME --interface IF [options]

Fountain format (default): takes the first object seen on the channel unless told otherwise.
  --object-id HEX        receive only this object (16 hex digits)
  --name NAME            receive only the object announced with this name
  --spool DIR            spool directory (default .OUT.iotupd next to OUT; kept for resume)
  --timeout SEC          give up after SEC seconds (exit 3; the spool is kept)
  --decoder WHERE        auto (default): on the receiving thread when the socket's receive
                         buffer holds >= 4 MiB (it absorbs what arrives during a decode),
                         else in a worker thread; or worker, or inline
  --low-memory           decode on the receiving thread, collect garbage more often and do
                         not warm the decoder up: the least memory (reception pauses for
                         each block's decode)
  --group ADDR --port P --scheme librecast|sha3 --scope link|site|org|global --json
  --format fountain|iotupd

${SECURE_RECV_USAGE}`;

/** The channel options as a ChannelTarget (resolveGroup validates them). */
export function channelTarget(v: { channel?: string; group?: string; scheme?: string; scope?: string }): ChannelTarget {
  if (v.channel === undefined && v.group === undefined) throw new UsageError('--channel NAME (or --group ADDR) is required');
  return {
    ...(v.channel !== undefined ? { channel: v.channel } : {}),
    ...(v.group !== undefined ? { group: v.group } : {}),
    ...(v.scheme !== undefined ? { scheme: v.scheme as Scheme } : {}),
    ...(v.scope !== undefined ? { scope: v.scope as Scope } : {}),
  };
}

function requireInterface(v: { interface?: string }): string {
  if (v.interface === undefined) throw new UsageError('--interface IF is required (never a default interface)');
  return v.interface;
}

/**
 * Peak resident set of this program, in KiB: VmHWM of /proc/self/status, which starts afresh at
 * exec. getrusage's ru_maxrss (process.resourceUsage().maxRSS) does not: after a fork and exec it
 * still holds the parent's RSS at the fork, so a receiver started by a large parent (a benchmark
 * holding a large buffer) would report the parent's peak instead of its own.
 */
export function peakRssKiB(): number {
  try {
    const m = /^VmHWM:\s+(\d+) kB$/m.exec(readFileSync('/proc/self/status', 'utf8'));
    if (m) return Number(m[1]);
  } catch {
    // not Linux: fall back to getrusage
  }
  return process.resourceUsage().maxRSS;
}

function cpuSeconds(): number {
  const u = process.cpuUsage();
  return Math.round((u.user + u.system) / 1000) / 1000;
}

export async function fountainSend(argv: string[], signal: AbortSignal): Promise<number> {
  const { values: v, positionals } = parse(argv, {
    ...channelOptions,
    rate: { type: 'string' },
    duration: { type: 'string' },
    'symbols-per-block': { type: 'string' },
    'sender-index': { type: 'string' },
    senders: { type: 'string' },
    'symbol-size': { type: 'string' },
    'block-symbols': { type: 'string' },
    name: { type: 'string' },
    hash: { type: 'string' },
    'hop-limit': { type: 'string' },
    ...SECURE_SEND_OPTIONS,
  });
  if (positionals.length !== 1) throw new UsageError('exactly one FILE to send');
  const file = positionals[0] as string;
  const group = resolveGroup(channelTarget(v));
  const iface = requireInterface(v);
  const rate = numberOption('rate', v.rate, DEFAULT_RATE_BPS / 1e6, 0.001, 100_000);
  const durationSec = v.duration === undefined ? undefined : numberOption('duration', v.duration, 0, 0, 1e9);
  const spb = v['symbols-per-block'] === undefined ? undefined : numberOption('symbols-per-block', v['symbols-per-block'], 0, 1, 2 ** 24);
  const senders = numberOption('senders', v.senders, 1, 1, 1024);
  const index = numberOption('sender-index', v['sender-index'], 0, 0, senders - 1);
  const T = numberOption('symbol-size', v['symbol-size'], DEFAULT_SYMBOL_SIZE, 4, 65532);
  if (T % 4 !== 0) throw new UsageError('--symbol-size must be a multiple of 4 (alignment Al = 4)');
  const blockSymbols = v['block-symbols'] === undefined ? undefined : numberOption('block-symbols', v['block-symbols'], 4096, 1, 56403);
  const hash = v.hash ?? 'sha256';
  if (hash !== 'sha256' && hash !== 'blake3') throw new UsageError('--hash must be sha256 or blake3');
  const port = numberOption('port', v.port, 4242, 1, 65535);
  const hopLimit = numberOption('hop-limit', v['hop-limit'], 255, 0, 255);
  const out = new Progress({ json: v.json === true ? true : undefined, label: 'send', jsonIntervalMs: 500 });
  if (T > maxSymbolSize()) out.event('large-symbols', `--symbol-size ${T} makes packets larger than 1280 bytes`, { symbolSize: T });
  const t0 = performance.now();
  let objectId = '';
  const show = (s: SenderStats) => {
    const secs = (performance.now() - t0) / 1000;
    const mbit = secs > 0 ? (s.bytes * 8) / secs / 1e6 : 0;
    return {
      done: s.symbols,
      total: 0,
      unit: 'count' as const,
      text: `symbols, round ${s.rounds}, ${mbit.toFixed(1)} Mbit/s`,
      detail: { symbols: s.symbols, packets: s.packets, rounds: s.rounds, mbit: Math.round(mbit * 100) / 100 },
    };
  };
  // Security (src/cli/secure.ts, loaded only when asked for): signed manifest, tags, encryption.
  const secure = usesSecurity(v, SECURE_SEND_OPTIONS) ? await import('./secure.js') : undefined;
  const security = secure?.planSecureSend(v);
  const tx = new Sender({
    file,
    group,
    interface: iface,
    port,
    hopLimit,
    rateBps: rate * 1e6,
    ...(security ? { security } : {}),
    symbolSize: T,
    ...(blockSymbols !== undefined ? { maxBlockSymbols: blockSymbols } : {}),
    senderIndex: index,
    senders,
    ...(durationSec !== undefined ? { durationMs: durationSec * 1000 } : {}),
    ...(spb !== undefined ? { symbolsPerBlock: spb } : {}),
    ...(v.name !== undefined ? { name: v.name } : {}),
    hash,
    signal,
    progressIntervalMs: 250,
  });
  tx.on('start', (st) => {
    objectId = objectIdHex(st.objectId);
    out.event('start', `sending ${file} (${formatBytes(st.oti.transferLength)}, ${st.blocks} blocks, T=${st.oti.symbolSize}) as object ${objectId} to [${group}]:${port} on ${iface}`, {
      format: 'fountain',
      objectId,
      group,
      port,
      size: st.oti.transferLength,
      blocks: st.blocks,
      symbolSize: st.oti.symbolSize,
    });
  });
  tx.on('progress', (s) => out.update(show(s)));
  let result: SenderStats & { result?: string };
  try {
    result = await tx.done;
  } catch (err) {
    // Interrupted (SIGINT / SIGTERM): the sender's normal end when it has no budget.
    if (!(err instanceof AbortError)) throw err;
    const last = tx.result ?? tx.stats;
    if (!last) throw err;
    result = { ...last, result: 'interrupted' };
  }
  const secs = (performance.now() - t0) / 1000;
  out.finish(
    { result: 'ok', format: 'fountain', objectId, rateMbit: rate, ...result, seconds: Math.round(secs * 1000) / 1000, cpuSeconds: cpuSeconds() },
    `sent ${result.symbols} symbols (${result.rounds} rounds) in ${secs.toFixed(1)} s`,
    show(result),
  );
  return 0;
}

export async function fountainRecv(argv: string[], signal: AbortSignal): Promise<number> {
  const { values: v, positionals } = parse(argv, {
    ...channelOptions,
    'object-id': { type: 'string' },
    name: { type: 'string' },
    spool: { type: 'string' },
    timeout: { type: 'string' },
    'low-memory': { type: 'boolean' },
    decoder: { type: 'string' },
    ...SECURE_RECV_OPTIONS,
  });
  if (positionals.length !== 1) throw new UsageError('exactly one OUT path');
  const outPath = positionals[0] as string;
  const target = channelTarget(v);
  const iface = requireInterface(v);
  const port = numberOption('port', v.port, 4242, 1, 65535);
  let objectId: Uint8Array | undefined;
  try {
    objectId = v['object-id'] === undefined ? undefined : parseObjectIdHex(v['object-id']);
  } catch {
    throw new UsageError('--object-id must be 16 hex digits');
  }
  const timeout = v.timeout === undefined ? undefined : numberOption('timeout', v.timeout, 0, 0, 1e9);
  const decodeOn = v.decoder ?? 'auto';
  if (decodeOn !== 'auto' && decodeOn !== 'worker' && decodeOn !== 'inline') throw new UsageError('--decoder must be auto, worker or inline');
  if (v['low-memory'] === true && decodeOn === 'worker') throw new UsageError('--low-memory decodes inline: it cannot be combined with --decoder worker');
  // Security (src/cli/secure.ts maps the options): nothing reaches the receiver before a verified manifest.
  const security = usesSecurity(v, SECURE_RECV_OPTIONS) ? (await import('./secure.js')).recvSecurityOptions(v) : undefined;
  const out = new Progress({ json: v.json === true ? true : undefined, label: 'recv', jsonIntervalMs: 250 });
  const t0 = performance.now();
  const summary = (stats: ReceiverStats) => ({
    received: stats.received,
    duplicate: stats.duplicate,
    foreign: stats.foreign,
    malformed: stats.malformed,
    conflicts: stats.conflicts,
    late: stats.late,
    corruptRecords: stats.corruptRecords,
    resumedBlocks: stats.resumedBlocks,
    decodeFailures: stats.decodeFailures,
    hashMismatches: stats.hashMismatches,
  });
  const rx = new Receiver({
    ...target,
    out: outPath,
    interface: iface,
    port,
    ...(v.spool !== undefined ? { spoolDir: v.spool } : {}),
    ...(objectId ? { objectId } : {}),
    ...(v.name !== undefined ? { name: v.name } : {}),
    lowMemory: v['low-memory'] === true,
    // The CLI process receives one object and nothing else: it opts into the process-wide
    // memory bounds (young generation, malloc arenas, scavenges; src/transfer/heap.ts).
    memory: tuneReceiverMemory({ lowMemory: v['low-memory'] === true }),
    decodeOn,
    ...(security ? { security } : {}),
    ...(timeout !== undefined ? { timeoutMs: timeout * 1000 } : {}),
    progressIntervalMs: 250,
    signal,
  });
  const securityOf = () => (security ? { security: rx.securitySummary() } : {});
  rx.on('listening', (group) => out.event('listening', `joined [${group}]:${port} on ${iface}`, { group, port, interface: iface }));
  rx.on('object', (o) => {
    const blocks = blockPartition(o.oti);
    const symbols = blocks.reduce((n, b) => n + b.k, 0);
    out.event('object', `receiving ${o.name || 'object'} ${objectIdHex(o.objectId)}: ${formatBytes(o.size)}, ${blocks.length} blocks, ${symbols} source symbols`, {
      objectId: objectIdHex(o.objectId),
      name: o.name,
      size: o.size,
      blocks: blocks.length,
      symbols,
    });
  });
  rx.on('progress', (p) => {
    out.update({
      done: p.have,
      total: p.needed,
      unit: 'count',
      text: p.object ? `symbols, blocks ${p.blocksDone}/${p.blocks}, dup ${p.stats.duplicate}` : 'waiting for an object description',
      detail: { blocksDone: p.blocksDone, blocks: p.blocks, ...summary(p.stats) },
    });
  });
  try {
    const result = await rx.done;
    const secs = (performance.now() - t0) / 1000;
    const s = result.stats;
    out.finish(
      {
        result: 'ok',
        format: 'fountain',
        out: outPath,
        objectId: objectIdHex(result.info.objectId),
        name: result.info.name,
        size: result.info.size,
        seconds: Math.round(secs * 1000) / 1000,
        used: s.used,
        overhead: Math.round(result.overhead * 1e5) / 1e5,
        pauses: result.pauses,
        decoder: result.decoder,
        warmUps: result.warmUps,
        youngGenerationMiB: result.youngGenerationMiB,
        youngGenerationCap: result.youngGenerationCap,
        mallocArenaLimit: result.mallocArenaLimit,
        lossSeen: result.lossSeen,
        recvBatch: result.recvBatch,
        recvBufferBytes: result.recvBufferBytes,
        ...summary(s),
        ...securityOf(),
        maxRssKiB: peakRssKiB(),
        cpuSeconds: cpuSeconds(),
      },
      `${outPath}: ${formatBytes(result.info.size)} complete, SHA-256 verified in ${secs.toFixed(1)} s; symbols received ${s.received}, used ${s.used}, duplicate ${s.duplicate}, late ${s.late}, foreign ${s.foreign}, malformed ${s.malformed}, conflicts ${s.conflicts}; overhead ${(result.overhead * 100).toFixed(2)} %`,
    );
    return 0;
  } catch (err) {
    if (err instanceof TimeoutError) {
      out.finish({ result: 'timeout', format: 'fountain', seconds: timeout, ...securityOf() }, `no complete object within ${timeout} s (spool kept for resume)`);
      return 3;
    }
    out.finish({ result: 'error', format: 'fountain', error: err instanceof IotupdError ? err.code : 'ERR_INTERNAL', ...securityOf() }, `stopped: ${err instanceof Error ? err.message : String(err)}`);
    throw err;
  }
}
