// The original iotupd format (`iotupd send|recv --format iotupd`): a plain carousel of 1246-byte
// frames (docs/carousel.md). The fountain format, the default, is in fountain.ts.
import { channelTarget } from './fountain.js';
import { numberOption, parse } from './command.js';
import { IotupdError, UsageError } from '../errors.js';
import { resolveGroup } from '../channel/index.js';
import { DEFAULT_RATE_MBIT, receiveCarousel, sendCarousel, type CarouselReceiveEvent, type CarouselReceiveProgress, type CarouselSendProgress } from '../carousel/index.js';
import { Progress, formatBytes, type ProgressUpdate } from './progress.js';

export const CAROUSEL_SEND_USAGE = `usage: iotupd send FILE --channel NAME --interface IF [--format iotupd] [--rate MBIT]
                   [--passes N] [--offset BYTES] [--port 4242] [--scheme librecast|sha3]
                   [--scope link|site|org|global] [--json]

The original iotupd carousel: FILE in 1246-byte frames, over and over, until interrupted or N
passes; a receiver that joins late waits for the next pass over what it missed.
  --channel    channel name; the group is its Librecast hash (see 'iotupd channel')
  --interface  network interface to send on (required: never a default)
  --format     iotupd: the original iotupd 1246-byte frame, a plain carousel
  --rate       Mbit/s on the wire, headers included (default ${DEFAULT_RATE_MBIT})
  --passes     stop after N passes over the file (default: forever)
  --offset     start the first pass at this byte offset (several senders, different offsets)
  --port       UDP destination port (default 4242)
  --json       JSON lines on stdout (default when stdout is not a terminal)`;

export const CAROUSEL_RECV_USAGE = `usage: iotupd recv OUT --channel NAME --interface IF [--format iotupd] [--timeout S]
                   [--port 4242] [--scheme librecast|sha3] [--scope link|site|org|global] [--json]

The original iotupd carousel: exits 0 once OUT is complete and its BLAKE3 hash verified. A
partial OUT (and OUT.iotupd-state) from an interrupted run is resumed.
  --channel    channel name (see 'iotupd channel')
  --interface  network interface to receive on (required: never a default)
  --format     iotupd: the original iotupd 1246-byte frame, a plain carousel
  --timeout    give up after S seconds (exit 3; the partial file is kept for resume)
  --port       UDP port (default 4242)
  --json       JSON lines on stdout (default when stdout is not a terminal)
Exit status: 0 complete and verified, 1 error, 2 usage, 3 timeout, 130 interrupted.`;

interface SendArgs {
  file: string;
  group: string;
  iface: string;
  port: number;
  rateMbit: number;
  passes: number;
  offset: number;
}

interface RecvArgs {
  out: string;
  group: string;
  iface: string;
  port: number;
  timeoutMs: number | undefined;
}

const channelOptions = {
  channel: { type: 'string' },
  group: { type: 'string' },
  interface: { type: 'string' },
  format: { type: 'string' },
  port: { type: 'string' },
  scheme: { type: 'string' },
  scope: { type: 'string' },
  json: { type: 'boolean' },
} as const;

async function sendCarouselWith(a: SendArgs, signal: AbortSignal, progress: Progress): Promise<number> {
  const show = (p: CarouselSendProgress) => ({
    done: p.frames,
    total: Number.isFinite(a.passes) ? a.passes * p.framesPerPass : 0,
    unit: 'count' as const,
    text: `frames, pass ${p.passes.toFixed(2)}, ${p.rateMbit.toFixed(1)} Mbit/s`,
    detail: { frames: p.frames, passes: Math.round(p.passes * 1000) / 1000, rateMbit: Math.round(p.rateMbit * 100) / 100 },
  });
  let started = false;
  const r = await sendCarousel({
    file: a.file,
    interface: a.iface,
    group: a.group,
    port: a.port,
    rateMbit: a.rateMbit,
    passes: a.passes,
    startOffset: a.offset,
    signal,
    onProgress: (p) => {
      if (!started) {
        started = true;
        progress.event('start', `sending ${a.file} (${formatBytes(p.size)}, ${p.framesPerPass} frames per pass) to [${a.group}]:${a.port} on ${a.iface}`, {
          size: p.size,
          hash: Buffer.from(p.hash).toString('hex'),
          group: a.group,
          port: a.port,
        });
      }
      progress.update(show(p));
    },
  });
  const stats = {
    result: r.interrupted ? 'interrupted' : 'ok',
    frames: r.frames,
    passes: Math.round(r.passes * 1000) / 1000,
    seconds: Math.round(r.elapsedMs) / 1000,
    rateMbit: Math.round(r.rateMbit * 100) / 100,
    sendErrors: r.sendErrors,
  };
  progress.finish(stats, `${r.interrupted ? 'interrupted after' : 'sent'} ${r.frames} frames (${stats.passes} passes) in ${stats.seconds} s at ${stats.rateMbit} Mbit/s`, show(r));
  return r.interrupted ? 130 : 0;
}

function pct(x: number): string {
  return `${(x * 100).toFixed(1)} %`;
}

function eventText(e: CarouselReceiveEvent): string {
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

async function recvCarouselWith(a: RecvArgs, signal: AbortSignal, progress: Progress): Promise<number> {
  let last: CarouselReceiveProgress | undefined;
  const show = (p: CarouselReceiveProgress): ProgressUpdate => ({
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
  const dropped = (p: CarouselReceiveProgress): number => Object.values(p.stats.dropped).reduce((x, y) => x + y, 0);
  const stats = (p: CarouselReceiveProgress, result: string, extra: Record<string, unknown> = {}) => ({
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
    const r = await receiveCarousel({
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


export async function carouselSend(argv: string[], signal: AbortSignal): Promise<number> {
  const { values, positionals } = parse(argv, { ...channelOptions, rate: { type: 'string' }, passes: { type: 'string' }, offset: { type: 'string' } });
  if (positionals.length !== 1) throw new UsageError('exactly one FILE to send (try --help)');
  const group = resolveGroup(channelTarget(values));
  if (values.interface === undefined) throw new UsageError('--interface IF is required (never a default interface)');
  const passes = values.passes === undefined ? Infinity : numberOption('passes', values.passes, 1, 1);
  if (!Number.isInteger(passes) && passes !== Infinity) throw new UsageError('--passes must be a whole number');
  const offset = numberOption('offset', values.offset, 0, 0);
  if (!Number.isInteger(offset)) throw new UsageError('--offset must be a whole number of bytes');
  const port = numberOption('port', values.port, 4242, 1, 65535);
  if (!Number.isInteger(port)) throw new UsageError('--port must be a whole number');
  const args: SendArgs = {
    file: positionals[0]!,
    group,
    iface: values.interface,
    port,
    rateMbit: numberOption('rate', values.rate, DEFAULT_RATE_MBIT, 0.001, 100_000),
    passes,
    offset,
  };
  return sendCarouselWith(args, signal, new Progress({ json: values.json === true ? true : undefined, label: 'send' }));
}

export async function carouselRecv(argv: string[], signal: AbortSignal): Promise<number> {
  const { values, positionals } = parse(argv, { ...channelOptions, timeout: { type: 'string' } });
  if (positionals.length !== 1) throw new UsageError('exactly one OUT path (try --help)');
  const group = resolveGroup(channelTarget(values));
  if (values.interface === undefined) throw new UsageError('--interface IF is required (never a default interface)');
  const port = numberOption('port', values.port, 4242, 1, 65535);
  if (!Number.isInteger(port)) throw new UsageError('--port must be a whole number');
  const timeout = values.timeout === undefined ? undefined : numberOption('timeout', values.timeout, 0, 0.001, 1e7);
  const args: RecvArgs = { out: positionals[0]!, group, iface: values.interface, port, timeoutMs: timeout === undefined ? undefined : timeout * 1000 };
  return recvCarouselWith(args, signal, new Progress({ json: values.json === true ? true : undefined, label: 'recv' }));
}
