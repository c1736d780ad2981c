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

/** parseArgs with strict checking, turning its errors into one-line UsageErrors. */
export function parse<O extends Options>(argv: string[], options: O): Parsed<O> {
  try {
    return parseArgs({ args: argv, options, allowPositionals: true, strict: true });
  } catch (err) {
    throw new UsageError((err as Error).message.split('\n')[0] ?? String(err));
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
