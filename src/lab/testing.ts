import type { ChildProcess } from 'node:child_process';
import { test, type TestContext } from 'node:test';
import { LabError } from '../errors.js';
import { JsonLines } from './json-lines.js';
import { Lab, type LabOptions } from './lab.js';
import { PROBE_SCRIPT, type ProbeRecvResult, type ProbeSendResult } from './probe.js';
import { labSupport } from './support.js';

export interface LabTestOptions extends LabOptions {
  /** node:test timeout in ms (default 60 s). */
  timeout?: number;
}

/**
 * A node:test test that runs `fn` in a fresh lab and always destroys it. When the lab is
 * unavailable here the test is skipped with the reason (never silently passed).
 */
export function labTest(name: string, opts: LabTestOptions, fn: (lab: Lab, t: TestContext) => Promise<void>): void {
  const support = labSupport();
  if (!support.ok) {
    test(name, { skip: `network lab unavailable: ${support.reason}` }, () => {});
    return;
  }
  test(name, { timeout: opts.timeout ?? 60_000 }, async (t) => {
    const lab = await Lab.create({ hosts: opts.hosts });
    // On a timeout node:test abandons fn (its finally never runs): t.signal aborts, so kill the
    // lab's children there, or their open pipes would keep this test file's process alive.
    const onAbort = (): void => void lab.destroy();
    t.signal.addEventListener('abort', onAbort, { once: true });
    try {
      await fn(lab, t);
    } finally {
      t.signal.removeEventListener('abort', onAbort);
      await lab.destroy();
    }
  });
}

export interface ProbeReceiver {
  child: ChildProcess;
  /** Resolves once the receiver joined (rejects if it exits first). */
  ready: Promise<void>;
  /** The receiver's final counts (rejects on a non-zero exit). */
  done: Promise<ProbeRecvResult>;
}

/**
 * Start the probe receiver (src/lab/probe.ts) in `host` on the host's lab interface.
 * `args` are extra probe options, e.g. ['--group', G, '--expect', '500', '--idle-ms', '300'].
 */
export function startReceiver(lab: Lab, host: string, args: string[]): ProbeReceiver {
  const h = lab.host(host);
  const child = lab.spawnNode(h, PROBE_SCRIPT, ['recv', '--interface', h.ifname, ...args]);
  const out = new JsonLines(child, { name: host });
  const done = out.exited.then(({ code, stderr, lines }) => {
    const result = lines.filter((o) => o.event === 'done').pop() as ProbeRecvResult | undefined;
    if (code !== 0 || !result) throw new LabError(`probe receiver in ${host} failed (exit ${String(code)}): ${stderr.trim()}`, 'ERR_LAB_PROBE');
    return result;
  });
  // Exited without 'ready': the exit's own error if it failed, else this one.
  const readyOrExit = out.waitFor((o) => o.event === 'ready').then(
    () => undefined,
    async () => {
      await done;
      throw new LabError(`probe receiver in ${host} exited before it was ready`, 'ERR_LAB_PROBE');
    },
  );
  readyOrExit.catch(() => {});
  done.catch(() => {});
  return { child, ready: readyOrExit, done };
}

/** Run the probe sender in `host` to completion. `args` e.g. ['--group', G, '--count', '500', '--rate', '5000']. */
export async function runSender(lab: Lab, host: string, args: string[]): Promise<ProbeSendResult> {
  const h = lab.host(host);
  const child = lab.spawnNode(h, PROBE_SCRIPT, ['send', '--interface', h.ifname, ...args]);
  const { code, stderr, lines } = await new JsonLines(child, { name: host }).exited;
  const result = lines.filter((o) => o.event === 'done').pop() as ProbeSendResult | undefined;
  if (code !== 0 || !result) throw new LabError(`probe sender in ${host} failed (exit ${String(code)}): ${stderr.trim()}`, 'ERR_LAB_PROBE');
  return result;
}

/** Sender id of end markers (see probe --until-id). */
export const MARKER_ID = 99;

/**
 * Send end markers from `host` to `group`: receivers started with ['--until-id', '99'] stop at
 * the first one. Several markers (spaced 5 ms) survive loss and rate limits; the receiver
 * counts them only in perId[99].
 */
export async function sendMarker(lab: Lab, host: string, group: string, count = 1): Promise<void> {
  await runSender(lab, host, ['--group', group, '--count', String(count), '--rate', '200', '--id', String(MARKER_ID), '--size', '64']);
}
