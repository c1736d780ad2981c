// Runs a user command (hook or health check) through /bin/sh in its own process group, so that a
// timeout or an abort kills everything it started, not only the shell.
import { spawn } from 'node:child_process';
import { AgentError } from './errors.js';

export interface CommandResult {
  /** Exit status; null when killed by a signal. */
  code: number | null;
  signal: NodeJS.Signals | null;
  timedOut: boolean;
  /** The last 2 KiB of stdout and stderr together, for the error message. */
  output: string;
}

const KEEP = 2048;

export function runCommand(command: string, opts: { env: Record<string, string>; timeoutMs: number; signal?: AbortSignal; cwd?: string }): Promise<CommandResult> {
  return new Promise((resolve, reject) => {
    if (opts.signal?.aborted) {
      reject(opts.signal.reason instanceof Error ? opts.signal.reason : new AgentError('aborted', 'ERR_ABORTED'));
      return;
    }
    const child = spawn('/bin/sh', ['-c', command], {
      env: { ...process.env, ...opts.env },
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
      ...(opts.cwd ? { cwd: opts.cwd } : {}),
    });
    let output = '';
    const keep = (b: Buffer) => {
      output = (output + b.toString('utf8')).slice(-KEEP);
    };
    child.stdout.on('data', keep);
    child.stderr.on('data', keep);
    let timedOut = false;
    const killGroup = () => {
      try {
        if (child.pid !== undefined) process.kill(-child.pid, 'SIGKILL');
      } catch {
        // the group is gone already
      }
    };
    const timer = setTimeout(() => {
      timedOut = true;
      killGroup();
    }, opts.timeoutMs);
    timer.unref();
    const onAbort = () => killGroup();
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    child.on('error', (err) => {
      clearTimeout(timer);
      opts.signal?.removeEventListener('abort', onAbort);
      reject(new AgentError(`cannot run '${command}': ${err.message}`, 'ERR_HOOK', { cause: err }));
    });
    // 'exit', not 'close': a grandchild that escaped the group may hold the pipes open forever.
    child.on('exit', (code, sig) => {
      clearTimeout(timer);
      opts.signal?.removeEventListener('abort', onAbort);
      // Whatever the shell left behind in its group goes with it.
      killGroup();
      child.stdout.destroy();
      child.stderr.destroy();
      if (opts.signal?.aborted) {
        reject(opts.signal.reason instanceof Error ? opts.signal.reason : new AgentError('aborted', 'ERR_ABORTED'));
        return;
      }
      resolve({ code, signal: sig, timedOut, output: output.trim() });
    });
  });
}

export function describeResult(r: CommandResult, timeoutMs: number): string {
  const how = r.timedOut ? `timed out after ${timeoutMs / 1000} s` : r.code !== null ? `exited ${r.code}` : `killed by ${r.signal}`;
  const last = r.output.split('\n').pop();
  return last ? `${how}: ${last}` : how;
}
