// The fountain format's `iotupd send` / `iotupd recv` (the default format). The carousel engineer's
// src/cli/commands/{send,recv}.ts dispatch here unless `--format iotupd` is given.
import { readFileSync } from 'node:fs';
import { channelGroup, SCHEMES, SCOPES, type Scheme, type Scope } from '../channel/index.js';
import { numberOption, parse } from './command.js';
import { IotupdError, UsageError } from '../errors.js';
import { DEFAULT_SYMBOL_SIZE, HashAlgorithm, objectIdHex, parseObjectIdHex, maxSymbolSize } from '../wire/fountain.js';
import { DEFAULT_RATE_BPS, type SenderStats } from '../transfer/sender.js';
import { receiveFile, sendFile } from '../transfer/driver.js';
import type { ReceiverStats } from '../transfer/receiver.js';
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

function resolveGroup(v: { channel?: string; group?: string; scheme?: string; scope?: string }): string {
  if (v.group !== undefined) return v.group;
  if (v.channel === undefined) throw new UsageError('--channel NAME (or --group ADDR) is required');
  const scheme = (v.scheme ?? 'librecast') as Scheme;
  if (!SCHEMES.includes(scheme)) throw new UsageError(`--scheme must be one of ${SCHEMES.join(', ')}`);
  const scope = (v.scope ?? 'global') as Scope;
  if (!(scope in SCOPES)) throw new UsageError(`--scope must be one of ${Object.keys(SCOPES).join(', ')}`);
  return channelGroup(v.channel, { scheme, scope });
}

function requireInterface(v: { interface?: string }): string {
  if (v.interface === undefined) throw new UsageError('--interface IF is required (never a default interface)');
  return v.interface;
}

/**
 * Peak resident set of this program, in KiB: VmHWM of /proc/self/status, which starts afresh at
 * exec. getrusage's ru_maxrss (process.resourceUsage().maxRSS) does not: after a fork and exec it
 * still holds the parent's RSS at the fork, so a receiver started by a large parent (a benchmark
 * holding a 256 MiB buffer) reported the parent's 266 MB while its own peak was 152 MB.
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
  const group = resolveGroup(v);
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
  const hooks = secure ? secure.secureSendHooks(secure.planSecureSend(v, file, rate * 1e6), rate * 1e6) : { rateBps: rate * 1e6 };
  const stats = await sendFile({
    file,
    group,
    interface: iface,
    port,
    hopLimit,
    ...hooks,
    symbolSize: T,
    maxBlockSymbols: blockSymbols,
    senderIndex: index,
    senders,
    durationMs: durationSec === undefined ? undefined : durationSec * 1000,
    symbolsPerBlock: spb,
    name: v.name,
    hashAlgorithm: hash === 'blake3' ? HashAlgorithm.BLAKE3 : HashAlgorithm.SHA256,
    signal,
    progressIntervalMs: 250,
    onProgress: (s, sender) => {
      if (!objectId) {
        objectId = objectIdHex(sender.objectId);
        out.event('start', `sending ${file} (${formatBytes(sender.oti.transferLength)}, ${sender.blockCount} blocks, T=${sender.oti.symbolSize}) as object ${objectId} to [${group}]:${port} on ${iface}`, {
          format: 'fountain',
          objectId,
          group,
          port,
          size: sender.oti.transferLength,
          blocks: sender.blockCount,
          symbolSize: sender.oti.symbolSize,
        });
      }
      out.update(show(s));
    },
  });
  const secs = (performance.now() - t0) / 1000;
  out.finish(
    { result: signal.aborted ? 'interrupted' : 'ok', format: 'fountain', objectId, rateMbit: rate, ...stats, seconds: Math.round(secs * 1000) / 1000, cpuSeconds: cpuSeconds() },
    `sent ${stats.symbols} symbols (${stats.rounds} rounds) in ${secs.toFixed(1)} s`,
    show(stats),
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
  const group = resolveGroup(v);
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
  // Security (src/cli/secure.ts): nothing reaches the receiver before a verified manifest.
  const sec = usesSecurity(v, SECURE_RECV_OPTIONS) ? (await import('./secure.js')).planSecureRecv(v) : undefined;
  const security = () => (sec ? { security: sec.summary() } : {});
  const out = new Progress({ json: v.json === true ? true : undefined, label: 'recv', jsonIntervalMs: 250 });
  const t0 = performance.now();
  const ac = new AbortController();
  const onAbort = () => ac.abort(signal.reason);
  signal.addEventListener('abort', onAbort, { once: true });
  let timedOut = false;
  const timer = timeout === undefined ? undefined : setTimeout(() => {
    timedOut = true;
    ac.abort(new UsageError('timeout'));
  }, timeout * 1000);
  timer?.unref();
  let started = false;
  let listening = false;
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
  try {
    const result = await receiveFile({
      out: outPath,
      spoolDir: v.spool,
      lowMemory: v['low-memory'] === true,
      decodeOn,
      objectId,
      name: v.name,
      group,
      interface: iface,
      port,
      signal: ac.signal,
      ...(sec ? { filter: sec.filter, checkBlock: sec.checkBlock } : {}),
      onProgress: (p, stats) => {
        // receiveFile reports progress only once its socket has joined the group: the first
        // report is the moment a sender's datagrams will be received (what tests wait for).
        if (!listening) {
          listening = true;
          out.event('listening', `joined [${group}]:${port} on ${iface}`, { group, port, interface: iface });
        }
        if (p.object && !started) {
          started = true;
          out.event('object', `receiving ${p.object.name || 'object'} ${objectIdHex(p.object.objectId)}: ${formatBytes(p.object.size)}, ${p.blocks} blocks, ${p.needed} source symbols`, {
            objectId: objectIdHex(p.object.objectId),
            name: p.object.name,
            size: p.object.size,
            blocks: p.blocks,
            symbols: p.needed,
            resumedBlocks: stats.resumedBlocks,
          });
        }
        out.update({
          done: p.have,
          total: p.needed,
          unit: 'count',
          text: p.object ? `symbols, blocks ${p.blocksDone}/${p.blocks}, dup ${stats.duplicate}` : 'waiting for an object description',
          detail: { blocksDone: p.blocksDone, blocks: p.blocks, ...summary(stats) },
        });
      },
    });
    const secs = (performance.now() - t0) / 1000;
    const s = result.stats;
    // The verified digest and the installed size against the signed manifest, then record the sequence.
    sec?.commit(outPath, result.info);
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
        mallocArenaLimit: result.mallocArenaLimit,
        lossSeen: result.lossSeen,
        recvBatch: result.recvBatch,
        recvBufferBytes: result.recvBufferBytes,
        ...summary(s),
        ...security(),
        maxRssKiB: peakRssKiB(),
        cpuSeconds: cpuSeconds(),
      },
      `${outPath}: ${formatBytes(result.info.size)} complete, SHA-256 verified in ${secs.toFixed(1)} s; symbols received ${s.received}, used ${s.used}, duplicate ${s.duplicate}, late ${s.late}, foreign ${s.foreign}, malformed ${s.malformed}, conflicts ${s.conflicts}; overhead ${(result.overhead * 100).toFixed(2)} %`,
    );
    return 0;
  } catch (err) {
    if (timedOut) {
      out.finish({ result: 'timeout', format: 'fountain', seconds: timeout, ...security() }, `no complete object within ${timeout} s (spool kept for resume)`);
      return 3;
    }
    out.finish({ result: 'error', format: 'fountain', error: err instanceof IotupdError ? err.code : 'ERR_INTERNAL', ...security() }, `stopped: ${err instanceof Error ? err.message : String(err)}`);
    throw err;
  } finally {
    if (timer) clearTimeout(timer);
    signal.removeEventListener('abort', onAbort);
  }
}

/** The format named by `--format X` / `--format=X` in argv; the fountain format is the default. */
export function usesFountainFormat(argv: readonly string[]): boolean {
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] as string;
    if (a === '--') break;
    if (a === '--format') return argv[i + 1] === 'fountain';
    if (a.startsWith('--format=')) return a.slice('--format='.length) === 'fountain';
  }
  return true;
}
