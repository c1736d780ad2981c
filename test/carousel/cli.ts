// Runs `iotupd` (the built CLI) inside lab hosts and collects its JSON lines (not a test file).
import type { ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { Lab } from '../../src/lab/index.js';

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
  const lines: Record<string, unknown>[] = [];
  const watchers: { pred: (o: Record<string, unknown>) => boolean; resolve: (o: Record<string, unknown>) => void }[] = [];
  let buf = '';
  let err = '';
  child.stdout?.setEncoding('utf8').on('data', (d: string) => {
    buf += d;
    let i: number;
    while ((i = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      let o: Record<string, unknown>;
      try {
        o = JSON.parse(line) as Record<string, unknown>;
      } catch {
        continue;
      }
      lines.push(o);
      for (const w of [...watchers]) {
        if (w.pred(o)) {
          watchers.splice(watchers.indexOf(w), 1);
          w.resolve(o);
        }
      }
    }
  });
  child.stderr?.setEncoding('utf8').on('data', (d: string) => (err += d));
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.once('close', (code, signal) => resolve({ code, signal })));
  const waitFor = (pred: (o: Record<string, unknown>) => boolean): Promise<Record<string, unknown>> => {
    const hit = lines.find(pred);
    if (hit) return Promise.resolve(hit);
    return new Promise((resolve, reject) => {
      watchers.push({ pred, resolve });
      void exit.then(() => reject(new Error(`${host}: process exited before the expected line; stderr: ${err.trim()}`)));
    });
  };
  return { child, lines, stderr: () => err, exit, waitFor };
}

export function statsLine(run: CliRun): Record<string, unknown> | undefined {
  return run.lines.find((o) => o.type === 'stats');
}
