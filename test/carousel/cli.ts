// Runs `iotupd` (the built CLI) inside lab hosts and collects its JSON lines (not a test file).
import type { ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { JsonLines, type Lab } from '../../src/lab/index.js';

export const MAIN = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));

export interface CliRun {
  child: ChildProcess;
  lines: Record<string, unknown>[];
  stderr: () => string;
  /** Exit code, or 128 + signal number style string for a signal. */
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Resolves with the first JSON line for which `pred` is true (rejects if the process exits first). */
  waitFor: (pred: (o: Record<string, unknown>) => boolean) => Promise<Record<string, unknown>>;
}

export function runCli(lab: Lab, host: string, args: string[], prefix: string[] = []): CliRun {
  const child = prefix.length > 0 ? lab.spawn(host, prefix[0]!, [...prefix.slice(1), process.execPath, MAIN, ...args]) : lab.spawnNode(host, MAIN, args);
  const out = new JsonLines(child, { name: host });
  const exit = out.exited.then(({ code, signal }) => ({ code, signal }));
  return { child, lines: out.lines, stderr: () => out.stderr, exit, waitFor: (pred) => out.waitFor(pred) };
}

export function statsLine(run: CliRun): Record<string, unknown> | undefined {
  return run.lines.find((o) => o.type === 'stats');
}

/**
 * Resolves once `iotupd recv` says its socket has joined the group (the JSON event 'listening');
 * rejects if it exits first. Datagrams sent after this reach it: no sleep needed.
 */
export function listening(run: CliRun): Promise<Record<string, unknown>> {
  return run.waitFor((o) => o.type === 'event' && o.event === 'listening');
}
