// The health check: a user command that exits 0 when the device works with the new version.
// Each attempt runs in its own process group and is killed as a whole on timeout; a failed
// attempt is retried `retries` times after `retryDelaySeconds`.
import { setTimeout as sleep } from 'node:timers/promises';
import { describeResult, runCommand } from './command.js';
import type { HealthCheckSettings } from './config.js';

export interface HealthResult {
  ok: boolean;
  attempts: number;
  /** Why the last attempt failed. */
  detail: string;
}

export async function runHealthCheck(h: HealthCheckSettings, env: Record<string, string>, signal?: AbortSignal, onAttempt?: (n: number, detail: string) => void): Promise<HealthResult> {
  const timeoutMs = h.timeoutSeconds * 1000;
  let detail = '';
  for (let attempt = 1; attempt <= h.retries + 1; attempt++) {
    if (attempt > 1 && h.retryDelaySeconds > 0) await sleep(h.retryDelaySeconds * 1000, undefined, signal ? { signal, ref: false } : { ref: false });
    const r = await runCommand(h.command, { env, timeoutMs, ...(signal ? { signal } : {}) });
    if (r.code === 0) return { ok: true, attempts: attempt, detail: 'passed' };
    detail = `health check ${describeResult(r, timeoutMs)}`;
    onAttempt?.(attempt, detail);
  }
  return { ok: false, attempts: h.retries + 1, detail };
}
