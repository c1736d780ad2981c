import { parseArgs, type ParseArgsConfig } from 'node:util';
import { UsageError } from '../errors.js';

/** One CLI sub-command. `run` returns the process exit code. */
/** A sub-command's implementation (src/cli/commands/*.ts); its name and summary are in the index. */
export interface Command {
  usage: string;
  run(argv: string[], signal: AbortSignal): Promise<number>;
}

type Options = NonNullable<ParseArgsConfig['options']>;
type Parsed<O extends Options> = ReturnType<typeof parseArgs<{ options: O; allowPositionals: true; strict: true }>>;

/**
 * parseArgs with strict checking, turning its errors into one-line UsageErrors. A value that
 * starts with '-' and then a digit ('--rate -5') is taken as the option's value, so that the
 * option's own range check answers instead of parseArgs' "argument is ambiguous".
 */
export function parse<O extends Options>(argv: string[], options: O): Parsed<O> {
  const args: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] as string;
    const next = argv[i + 1];
    const name = a.startsWith('--') ? a.slice(2) : undefined;
    if (name !== undefined && options[name]?.type === 'string' && next !== undefined && /^-[\d.]/.test(next)) {
      args.push(`${a}=${next}`);
      i += 1;
    } else args.push(a);
  }
  try {
    return parseArgs({ args, options, allowPositionals: true, strict: true });
  } catch (err) {
    const first = (err as Error).message.split('\n')[0] ?? String(err);
    // parseArgs' word for a value that looks like the next option ('--device-id --key').
    const ambiguous = /^Option '(--[\w-]+)' argument is ambiguous/.exec(first);
    throw new UsageError(ambiguous ? `${ambiguous[1]} needs a value` : first);
  }
}

/** A number option: finite, within [min, max], else a UsageError naming the option. */
export function numberOption(name: string, raw: string | undefined, fallback: number, min = 0, max = Number.MAX_SAFE_INTEGER): number {
  if (raw === undefined) return fallback;
  const v = Number(raw);
  if (!Number.isFinite(v) || v < min || v > max) {
    throw new UsageError(`--${name} must be a number from ${min} to ${max}, got '${raw}'`);
  }
  return v;
}

/** Transfer formats of `send` and `recv`: RaptorQ fountain (default), or the original carousel. */
export const FORMATS = ['fountain', 'iotupd'] as const;
export type Format = (typeof FORMATS)[number];

/** The format named by `--format X` / `--format=X` in argv (default fountain); any other is a UsageError. */
export function formatOf(argv: readonly string[]): Format {
  let f: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] as string;
    if (a === '--') break;
    if (a === '--format') f = argv[i + 1] ?? '';
    else if (a.startsWith('--format=')) f = a.slice('--format='.length);
  }
  if (f === undefined) return 'fountain';
  if ((FORMATS as readonly string[]).includes(f)) return f as Format;
  throw new UsageError(`--format must be one of ${FORMATS.join(', ')}, got '${f}'`);
}
