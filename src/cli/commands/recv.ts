import type { Command } from '../command.js';
import { fountainRecv, usesFountainFormat, RECV_USAGE as FOUNTAIN_USAGE } from '../fountain.js';
import { numberOption, parse } from '../command.js';
import { IotupdError, UsageError } from '../../errors.js';
import { SCHEMES, SCOPES, channelGroup, type Scheme, type Scope } from '../../channel/index.js';
import { receiveFile, type ReceiveEvent, type ReceiveProgress } from '../../carousel/index.js';
import { Progress, formatBytes, type ProgressUpdate } from '../progress.js';

const usage = `usage: iotupd recv OUT --channel NAME --interface IF [--format iotupd] [--timeout S]
                   [--port 4242] [--scheme librecast|sha3] [--scope link|site|org|global] [--json]

Receives the file sent on a multicast channel into OUT; exits 0 once OUT is complete and its
hash verified. A partial OUT (and OUT.iotupd-state) from an interrupted run is resumed.
  --channel    channel name (see 'iotupd channel')
  --interface  network interface to receive on (required: never a default)
  --format     iotupd: the original iotupd 1246-byte frame, a plain carousel
  --timeout    give up after S seconds (exit 3; the partial file is kept for resume)
  --port       UDP port (default 4242)
  --json       JSON lines on stdout (default when stdout is not a terminal)
Exit status: 0 complete and verified, 1 error, 2 usage, 3 timeout, 130 interrupted.`;

/** What every format's receiver gets from the command line. */
export interface RecvArgs {
  out: string;
  group: string;
  iface: string;
  port: number;
  timeoutMs: number | undefined;
}

type RecvFormat = (args: RecvArgs, signal: AbortSignal, progress: Progress) => Promise<number>;

function oneOf<T extends string>(option: string, value: string | undefined, allowed: readonly T[], fallback: T): T {
  if (value === undefined) return fallback;
  if ((allowed as readonly string[]).includes(value)) return value as T;
  throw new UsageError(`--${option} must be one of ${allowed.join(', ')}, got '${value}'`);
}

function pct(x: number): string {
  return `${(x * 100).toFixed(1)} %`;
}

function eventText(e: ReceiveEvent): string {
  switch (e.type) {
    case 'listening':
      return `joined [${e.group}]:${e.port} on ${e.interface}`;
    case 'resume':
      return `resuming: ${e.chunks}/${e.chunksTotal} chunks already present`;
    case 'state-ignored':
      return `resume state ignored (${e.reason}); starting over`;
    case 'file':
      return `receiving ${formatBytes(e.size)}, BLAKE3 ${e.hash.slice(0, 16)}...`;
    case 'existing-file-matches':
      return 'the existing output file already has the right hash';
    case 'hash-mismatch':
      return `whole-file hash mismatch (${e.failures}): fetching every chunk again`;
  }
}

async function recvIotupd(a: RecvArgs, signal: AbortSignal, progress: Progress): Promise<number> {
  let last: ReceiveProgress | undefined;
  const show = (p: ReceiveProgress): ProgressUpdate => ({
    done: p.bytes,
    total: p.size ?? 0,
    unit: 'bytes',
    text: `loss ${pct(p.stats.loss.estimate)} dup ${p.stats.duplicate}${dropped(p) ? ` dropped ${dropped(p)}` : ''}`,
    detail: {
      phase: p.phase,
      chunks: p.chunks,
      chunksTotal: p.chunksTotal,
      frames: p.stats.datagrams,
      lossEstimate: Math.round(p.stats.loss.estimate * 10000) / 10000,
    },
  });
  const dropped = (p: ReceiveProgress): number => Object.values(p.stats.dropped).reduce((x, y) => x + y, 0);
  const stats = (p: ReceiveProgress, result: string, extra: Record<string, unknown> = {}) => ({
    result,
    ...extra,
    seconds: Math.round(p.elapsedMs) / 1000,
    size: p.size,
    chunks: p.chunks,
    chunksTotal: p.chunksTotal,
    frames: p.stats.datagrams,
    written: p.stats.written,
    duplicate: p.stats.duplicate,
    empty: p.stats.empty,
    dropped: p.stats.dropped,
    droppedTotal: dropped(p),
    lossEstimate: Math.round(p.stats.loss.estimate * 10000) / 10000,
    lostFrames: p.stats.loss.lost,
    hashFailures: p.stats.hashFailures,
  });
  try {
    const r = await receiveFile({
      out: a.out,
      interface: a.iface,
      group: a.group,
      port: a.port,
      timeoutMs: a.timeoutMs,
      signal,
      onProgress: (p) => {
        last = p;
        progress.update(show(p));
      },
      onEvent: (e) => {
        const { type, ...fields } = e;
        progress.event(type, eventText(e), fields);
      },
    });
    const s = stats(r, 'ok', { hash: r.hash, resumedChunks: r.resumedChunks, alreadyPresent: r.alreadyPresent });
    progress.finish(
      s,
      `${a.out}: ${formatBytes(r.size)} complete, BLAKE3 verified; ${s.frames} frames, ${s.written} written, ${s.duplicate} duplicate, ${s.droppedTotal} dropped, loss ~${pct(r.stats.loss.estimate)}, ${s.seconds} s`,
      show(r),
    );
    return 0;
  } catch (err) {
    if (last) {
      const code = err instanceof IotupdError ? err.code : 'ERR_INTERNAL';
      progress.finish(stats(last, 'error', { error: code }), `stopped: ${last.chunks}/${last.chunksTotal} chunks`, show(last));
    }
    throw err;
  }
}

/** Transfer formats; a new one is one more entry here (and in send.ts). */
const formats: Record<string, RecvFormat> = { iotupd: recvIotupd };

export const recvCommand: Command = {
  usage: `${FOUNTAIN_USAGE}\n\nOriginal iotupd format (--format iotupd):\n${usage}`,
  async run(argv, signal) {
    if (usesFountainFormat(argv)) return fountainRecv(argv, signal);
    const { values, positionals } = parse(argv, {
      channel: { type: 'string' },
      interface: { type: 'string' },
      format: { type: 'string' },
      timeout: { type: 'string' },
      port: { type: 'string' },
      scheme: { type: 'string' },
      scope: { type: 'string' },
      json: { type: 'boolean' },
    });
    if (positionals.length !== 1) throw new UsageError('recv: exactly one OUT path expected (try --help)');
    if (values.channel === undefined) throw new UsageError('recv: --channel NAME is required');
    if (values.interface === undefined) throw new UsageError('recv: --interface IF is required');
    const format = oneOf('format', values.format, Object.keys(formats), 'iotupd');
    const scheme = oneOf<Scheme>('scheme', values.scheme, SCHEMES, 'librecast');
    const scope = oneOf<Scope>('scope', values.scope, Object.keys(SCOPES) as Scope[], 'global');
    const port = numberOption('port', values.port, 4242, 1, 65535);
    if (!Number.isInteger(port)) throw new UsageError('--port must be a whole number');
    const timeout = values.timeout === undefined ? undefined : numberOption('timeout', values.timeout, 0, 0.001, 1e7);
    const args: RecvArgs = {
      out: positionals[0]!,
      group: channelGroup(values.channel, { scheme, scope }),
      iface: values.interface,
      port,
      timeoutMs: timeout === undefined ? undefined : timeout * 1000,
    };
    return formats[format]!(args, signal, new Progress({ json: values.json === true ? true : undefined, label: 'recv' }));
  },
};
