import type { Command } from '../command.js';
import { fountainSend, usesFountainFormat, SEND_USAGE as FOUNTAIN_USAGE } from '../fountain.js';
import { numberOption, parse } from '../command.js';
import { UsageError } from '../../errors.js';
import { SCHEMES, SCOPES, channelGroup, type Scheme, type Scope } from '../../channel/index.js';
import { DEFAULT_RATE_MBIT, sendFile, type SendProgress } from '../../carousel/index.js';
import { Progress, formatBytes } from '../progress.js';

const usage = `usage: iotupd send FILE --channel NAME --interface IF [--format iotupd] [--rate MBIT]
                   [--passes N] [--offset BYTES] [--port 4242] [--scheme librecast|sha3]
                   [--scope link|site|org|global] [--json]

Sends FILE to a multicast channel, over and over (a carousel), until interrupted or N passes.
  --channel    channel name; the group is its Librecast hash (see 'iotupd channel')
  --interface  network interface to send on (required: never a default)
  --format     iotupd: the original iotupd 1246-byte frame, a plain carousel
  --rate       Mbit/s on the wire, headers included (default ${DEFAULT_RATE_MBIT})
  --passes     stop after N passes over the file (default: forever)
  --offset     start the first pass at this byte offset (several senders, different offsets)
  --port       UDP destination port (default 4242)
  --json       JSON lines on stdout (default when stdout is not a terminal)`;

/** What every format's sender gets from the command line. */
export interface SendArgs {
  file: string;
  group: string;
  iface: string;
  port: number;
  rateMbit: number;
  passes: number;
  offset: number;
}

type SendFormat = (args: SendArgs, signal: AbortSignal, progress: Progress) => Promise<number>;

function oneOf<T extends string>(option: string, value: string | undefined, allowed: readonly T[], fallback: T): T {
  if (value === undefined) return fallback;
  if ((allowed as readonly string[]).includes(value)) return value as T;
  throw new UsageError(`--${option} must be one of ${allowed.join(', ')}, got '${value}'`);
}

async function sendIotupd(a: SendArgs, signal: AbortSignal, progress: Progress): Promise<number> {
  const show = (p: SendProgress) => ({
    done: p.frames,
    total: Number.isFinite(a.passes) ? a.passes * p.framesPerPass : 0,
    unit: 'count' as const,
    text: `frames, pass ${p.passes.toFixed(2)}, ${p.rateMbit.toFixed(1)} Mbit/s`,
    detail: { frames: p.frames, passes: Math.round(p.passes * 1000) / 1000, rateMbit: Math.round(p.rateMbit * 100) / 100 },
  });
  let started = false;
  const r = await sendFile({
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

/** Transfer formats; a new one is one more entry here (and in recv.ts). */
const formats: Record<string, SendFormat> = { iotupd: sendIotupd };

export const sendCommand: Command = {
  usage: `${FOUNTAIN_USAGE}\n\nOriginal iotupd format (--format iotupd):\n${usage}`,
  async run(argv, signal) {
    if (usesFountainFormat(argv)) return fountainSend(argv, signal);
    const { values, positionals } = parse(argv, {
      channel: { type: 'string' },
      interface: { type: 'string' },
      format: { type: 'string' },
      rate: { type: 'string' },
      passes: { type: 'string' },
      offset: { type: 'string' },
      port: { type: 'string' },
      scheme: { type: 'string' },
      scope: { type: 'string' },
      json: { type: 'boolean' },
    });
    if (positionals.length !== 1) throw new UsageError('send: exactly one FILE expected (try --help)');
    if (values.channel === undefined) throw new UsageError('send: --channel NAME is required');
    if (values.interface === undefined) throw new UsageError('send: --interface IF is required');
    const format = oneOf('format', values.format, Object.keys(formats), 'iotupd');
    const scheme = oneOf<Scheme>('scheme', values.scheme, SCHEMES, 'librecast');
    const scope = oneOf<Scope>('scope', values.scope, Object.keys(SCOPES) as Scope[], 'global');
    const passes = values.passes === undefined ? Infinity : numberOption('passes', values.passes, 1, 1);
    if (!Number.isInteger(passes) && passes !== Infinity) throw new UsageError('--passes must be a whole number');
    const offset = numberOption('offset', values.offset, 0, 0);
    if (!Number.isInteger(offset)) throw new UsageError('--offset must be a whole number of bytes');
    const port = numberOption('port', values.port, 4242, 1, 65535);
    if (!Number.isInteger(port)) throw new UsageError('--port must be a whole number');
    const args: SendArgs = {
      file: positionals[0]!,
      group: channelGroup(values.channel, { scheme, scope }),
      iface: values.interface,
      port,
      rateMbit: numberOption('rate', values.rate, DEFAULT_RATE_MBIT, 0.001, 100_000),
      passes,
      offset,
    };
    return formats[format]!(args, signal, new Progress({ json: values.json === true ? true : undefined, label: 'send' }));
  },
};
