/**
 * `iotupd demo transfer`: a private lab LAN with a sender and three devices (one with
 * 10 % loss, one joining late), a generated file sent by multicast, every copy verified by its
 * BLAKE3 hash, the lab removed afterwards (also on Ctrl-C or failure). Exit 0 only if every
 * device holds an intact copy.
 */
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { blake3 } from '@noble/hashes/blake3.js';
import type { Command } from '../command.js';
import { numberOption, parse } from '../command.js';
import { LabError, UsageError, abortError } from '../../errors.js';
import { JsonLines, Lab, labSupport, reexecInUserns } from '../../lab/index.js';
import { formatBytes } from '../progress.js';
import { runFleetDemo } from './demo-fleet.js';

const MAIN = fileURLToPath(new URL('../main.js', import.meta.url));
const FORMATS = ['iotupd', 'fountain'] as const;

const usage = `usage: iotupd demo [--size MIB] [--rate MBIT] [--loss PCT] [--rollout PCT] [--timeout S] [--keep]
                   [--dashboard-port N]
       iotupd demo transfer [--format iotupd|fountain] [--size MIB] [--rate MBIT] [--loss PCT]
                   [--seed N] [--timeout S]

Both build a private lab network (network namespaces; needs root, or run themselves again inside
'unshare -rnm' where user namespaces are allowed) and remove it afterwards, also on Ctrl-C.

demo: the fleet story. Makes keys and a signed release (device class 'thermostat', rollout
--rollout % (default 50)), starts a publisher and five devices running the agent daemon: lossy
(--loss % loss, default 10), late (powered on once another device is updated), sick (its
health check fails: it rolls back), outside (outside the rollout share), gateway (another
device class). The devices report their state by signed multicast to 'iotupd status' on an
operator host (its live table is shown above the event log on a terminal, and at the end) and
to a web dashboard on http://127.0.0.1:8421 (--dashboard-port; a free port when taken). The
publisher hears the same reports and pauses 2.0 once no device needs it. A summary table ends
it. Exit 0 when the fleet ends as expected.
  --keep  leave the fleet and the dashboard running after the story, until Ctrl-C
  --size  image size in MiB (default 1)   --rate  publisher data rate (default 20)
  --timeout  give up after S seconds (default 60)

demo transfer: builds a private lab network (network namespaces; needs root, or runs itself again inside
'unshare -rnm' where user namespaces are allowed), sends a generated file from one host to
three devices by IPv6 multicast, shows each device's progress, verifies every copy.
  --format   transfer format (default fountain; iotupd is the original carousel)
  --size     file size in MiB (default 4)
  --rate     sender rate in Mbit/s (default 40)
  --loss     random loss on dev2 in % (default 10)
  --seed     seed of the generated file (default 1)
  --timeout  give up after S seconds (default 120)
Devices: dev1 (clean), dev2 (--loss % random loss), dev3 (joins once dev1 holds 40 % of the file).`;

interface Device {
  name: string;
  note: string;
  out: string;
  child?: ChildProcess;
  lines: Record<string, unknown>[];
  stderr: string;
  exit?: { code: number | null; signal: NodeJS.Signals | null };
  exited?: Promise<void>;
  /** Resolves when `iotupd recv` says it has joined the group, or when it exits without that. */
  listening?: Promise<void>;
  started?: number;
}

/** Deterministic pseudo-random file content: the BLAKE3 XOF of the seed. */
function generate(size: number, seed: number): Uint8Array {
  return blake3(new TextEncoder().encode(`iotupd demo ${seed}`), { dkLen: size });
}

function lastProgress(d: Device): Record<string, unknown> | undefined {
  for (let i = d.lines.length - 1; i >= 0; i--) if (d.lines[i]!.type === 'progress') return d.lines[i];
  return undefined;
}

function percentOf(o: Record<string, unknown> | undefined): number {
  if (!o) return 0;
  if (typeof o.percent === 'number') return o.percent;
  const done = Number(o.done);
  const total = Number(o.total);
  return total > 0 ? (100 * done) / total : 0;
}

function status(d: Device, t0: number): string {
  const stats = d.lines.find((o) => o.type === 'stats');
  if (d.started === undefined) return `${d.name.padEnd(5)} waiting to join`;
  const p = lastProgress(d);
  const loss = stats?.lossEstimate ?? p?.lossEstimate;
  const lossText = typeof loss === 'number' ? ` loss ~${(loss * 100).toFixed(1)} %` : '';
  if (d.exit) {
    const ok = d.exit.code === 0;
    return `${d.name.padEnd(5)} ${ok ? 'done  ' : 'FAILED'} ${ok ? '100.0' : percentOf(p).toFixed(1)} %${lossText}${stats?.seconds !== undefined ? `, ${String(stats.seconds)} s` : ''}`;
  }
  const pct = percentOf(p);
  const bar = '#'.repeat(Math.round(pct / 5)).padEnd(20, '.');
  return `${d.name.padEnd(5)} [${bar}] ${pct.toFixed(1).padStart(5)} %${lossText} (${((performance.now() - t0) / 1000).toFixed(1)} s)`;
}

async function runDemo(opts: { format: string; size: number; rate: number; loss: number; seed: number; timeoutS: number }, signal: AbortSignal): Promise<number> {
  const tty = process.stdout.isTTY === true;
  let closing = false; // after an interrupt or failure: no more per-device lines
  const say = (s: string): void => void process.stdout.write(s + '\n');
  const dir = mkdtempSync(join(tmpdir(), 'iotupd-demo-'));
  let lab: Lab | undefined;
  const onAbort = (): void => {
    lab?.destroySync(); // kills every process in the lab, removes the namespaces
  };
  signal.addEventListener('abort', onAbort, { once: true });
  try {
    const file = join(dir, 'update.bin');
    const bytes = generate(opts.size, opts.seed);
    writeFileSync(file, bytes);
    const hash = Buffer.from(blake3(bytes)).toString('hex');
    say(`iotupd demo: ${formatBytes(opts.size)} file (BLAKE3 ${hash.slice(0, 16)}...), format ${opts.format}, ${opts.rate} Mbit/s`);

    lab = await Lab.create({ hosts: ['sender', 'dev1', 'dev2', 'dev3'] });
    if (signal.aborted) throw signal.reason;
    const theLab = lab;
    say(`lab ${lab.id}: sender + dev1, dev2 (${opts.loss} % loss), dev3 (joins late) on bridge ${lab.bridge}, prefix ${lab.prefix}::/64`);
    if (opts.loss > 0) await lab.impair('dev2', { lossPercent: opts.loss });
    const channel = `iotupd-demo/${lab.id}`;

    const devices: Device[] = [
      { name: 'dev1', note: 'clean link', out: join(dir, 'dev1.bin'), lines: [], stderr: '' },
      { name: 'dev2', note: `${opts.loss} % loss`, out: join(dir, 'dev2.bin'), lines: [], stderr: '' },
      { name: 'dev3', note: 'joins late', out: join(dir, 'dev3.bin'), lines: [], stderr: '' },
    ];
    const t0 = performance.now();
    const start = (d: Device): void => {
      const h = theLab.host(d.name);
      d.started = performance.now();
      d.child = theLab.spawnNode(h, MAIN, ['recv', d.out, '--channel', channel, '--interface', h.ifname, '--format', opts.format, '--json', '--timeout', String(opts.timeoutS)]);
      const out = new JsonLines(d.child, { onLine: (o) => d.lines.push(o), onStderr: (s) => (d.stderr += s) });
      d.exited = out.exited.then(({ code, signal }) => {
        d.exit = { code, signal };
        if (!tty && !closing) say(`  ${status(d, t0)}`);
      });
      // A device that exits first is reported as failed below, with its own error.
      d.listening = out.waitFor((o) => o.type === 'event' && o.event === 'listening').then(
        () => undefined,
        () => undefined,
      );
    };
    start(devices[0]!);
    start(devices[1]!);
    await Promise.all([devices[0]!.listening, devices[1]!.listening]); // both joined before the first packet
    if (signal.aborted) throw signal.reason;

    const sh = lab.host('sender');
    const sender = lab.spawnNode(sh, MAIN, ['send', file, '--channel', channel, '--interface', sh.ifname, '--format', opts.format, '--rate', String(opts.rate), '--json']);
    const senderOut = new JsonLines(sender, { name: 'sender' });
    const senderExit = senderOut.exited;
    // dev3 joins once dev1 (the clean device) holds 40 % of the file: mid-transfer whatever the
    // format, the machine's speed or the rate.
    const lateTimer = setInterval(() => {
      if (devices[2]!.started !== undefined || signal.aborted) return;
      if (percentOf(lastProgress(devices[0]!)) >= 40 || devices[0]!.exit) {
        start(devices[2]!);
        if (!tty) say(`  dev3  joins now`);
      }
    }, 50);
    let drawn = 0;
    const draw = (): void => {
      const lines = devices.map((d) => `  ${status(d, t0)}`);
      if (tty) {
        if (drawn) process.stdout.write(`\x1b[${drawn}A`);
        for (const l of lines) process.stdout.write(`\r\x1b[K${l}\n`);
        drawn = lines.length;
      }
    };
    let lastLog = 0;
    const ticker = setInterval(() => {
      if (tty) draw();
      else if (performance.now() - lastLog >= 2000) {
        lastLog = performance.now();
        say(`  t=${((performance.now() - t0) / 1000).toFixed(1)}s ` + devices.map((d) => `${d.name} ${d.started === undefined ? 'waiting' : `${percentOf(lastProgress(d)).toFixed(0)} %`}`).join(', '));
      }
    }, 200);
    const deadline = new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), opts.timeoutS * 1000 + 5000).unref());
    const aborted = new Promise<'aborted'>((r) => signal.addEventListener('abort', () => r('aborted'), { once: true }));
    const senderDied = senderExit.then(() => 'sender-exit' as const);
    const allDone = (async () => {
      // `closing` ends the wait after an interrupt, a timeout or a sender failure (else the
      // timer would hold the process open).
      while (!closing && devices.some((d) => d.exited === undefined)) await new Promise((r) => setTimeout(r, 50));
      await Promise.all(devices.map((d) => d.exited));
      return 'done' as const;
    })();
    const outcome = await Promise.race([allDone, deadline, aborted, senderDied]);
    clearInterval(lateTimer);
    clearInterval(ticker);
    if (tty) draw();
    sender.kill('SIGINT');
    if (outcome === 'aborted') throw abortError(signal);
    if (outcome === 'sender-exit') throw new LabError(`the sender stopped: ${senderOut.stderr.trim() || 'no message'}`, 'ERR_DEMO_SENDER');
    if (outcome === 'timeout') throw new LabError(`devices still running after ${opts.timeoutS} s`, 'ERR_DEMO_TIMEOUT');

    say('verifying every copy against the sender file:');
    let ok = 0;
    for (const d of devices) {
      let verdict: string;
      if (d.exit?.code !== 0) {
        verdict = `FAILED (exit ${String(d.exit?.code ?? d.exit?.signal)}): ${d.stderr.trim().split('\n').pop() ?? ''}`;
      } else {
        let copy: Buffer | undefined;
        try {
          copy = readFileSync(d.out);
        } catch {
          copy = undefined;
        }
        const h = copy ? Buffer.from(blake3(copy)).toString('hex') : 'missing';
        const stats = d.lines.find((o) => o.type === 'stats') ?? {};
        const loss = typeof stats.lossEstimate === 'number' ? `, loss ~${(stats.lossEstimate * 100).toFixed(1)} %` : '';
        const secs = stats.seconds !== undefined ? `${String(stats.seconds)} s` : '';
        if (h === hash) {
          ok += 1;
          verdict = `ok   ${formatBytes(copy!.length)} in ${secs}${loss}; BLAKE3 matches`;
        } else {
          verdict = `BAD  BLAKE3 ${h.slice(0, 16)}... differs`;
        }
      }
      say(`  ${d.name} (${d.note}): ${verdict}`);
    }
    const sent = senderOut.lines.filter((o) => o.type === 'progress').pop();
    if (sent?.frames !== undefined) say(`sender: ${String(sent.frames)} frames sent`);
    say(ok === devices.length ? `all ${ok} copies verified` : `${devices.length - ok} of ${devices.length} copies FAILED`);
    return ok === devices.length ? 0 : 1;
  } finally {
    closing = true;
    signal.removeEventListener('abort', onAbort);
    await lab?.destroy();
    rmSync(dir, { recursive: true, force: true });
    if (lab) say(`lab ${lab.id} removed`);
  }
}

export const demoCommand: Command = {
  usage,
  async run(argv, signal) {
    const { values, positionals } = parse(argv, {
      rollout: { type: 'string' },
      format: { type: 'string' },
      size: { type: 'string' },
      rate: { type: 'string' },
      loss: { type: 'string' },
      seed: { type: 'string' },
      timeout: { type: 'string' },
      keep: { type: 'boolean' },
      'dashboard-port': { type: 'string' },
    });
    const transfer = positionals[0] === 'transfer';
    if (positionals.length > (transfer ? 1 : 0)) throw new UsageError(`demo: unexpected argument '${positionals[transfer ? 1 : 0]}'`);
    if (!transfer) {
      if (values.format !== undefined || values.seed !== undefined) throw new UsageError('--format and --seed apply to "iotupd demo transfer"');
      if (values['dashboard-port'] !== undefined && !Number.isInteger(Number(values['dashboard-port']))) throw new UsageError(`--dashboard-port must be an integer, got '${values['dashboard-port']}'`);
      const fleet = {
        size: Math.round(numberOption('size', values.size, 1, 0.001, 256) * 1024 * 1024),
        rate: numberOption('rate', values.rate, 20, 0.1, 10_000),
        loss: numberOption('loss', values.loss, 10, 0, 50),
        rollout: numberOption('rollout', values.rollout, 50, 1, 99),
        timeoutS: numberOption('timeout', values.timeout, 60, 1, 86_400),
        live: process.stdout.isTTY === true,
        keep: values.keep === true,
        dashboardPort: numberOption('dashboard-port', values['dashboard-port'], 8421, 0, 65_535),
      };
      const support = labSupport();
      if (!support.ok) {
        if (support.userns) reexecInUserns();
        throw new LabError(`demo cannot run: ${support.reason}`, 'ERR_LAB_UNSUPPORTED');
      }
      return runFleetDemo(fleet, signal);
    }
    if (values.rollout !== undefined || values.keep !== undefined || values['dashboard-port'] !== undefined) throw new UsageError('--rollout, --keep and --dashboard-port apply to the fleet demo ("iotupd demo")');
    const format = values.format ?? 'fountain';
    if (!(FORMATS as readonly string[]).includes(format)) throw new UsageError(`--format must be one of ${FORMATS.join(', ')}, got '${format}'`);
    const opts = {
      format,
      size: Math.round(numberOption('size', values.size, 4, 0.001, 1024) * 1024 * 1024),
      rate: numberOption('rate', values.rate, 40, 0.1, 10_000),
      loss: numberOption('loss', values.loss, 10, 0, 99),
      seed: numberOption('seed', values.seed, 1, 0, 2 ** 32),
      timeoutS: numberOption('timeout', values.timeout, 120, 1, 86_400),
    };
    const support = labSupport();
    if (!support.ok) {
      // Not root: run again inside `unshare -rnm` where the kernel allows it (does not return).
      if (support.userns) reexecInUserns();
      throw new LabError(`demo cannot run: ${support.reason}`, 'ERR_LAB_UNSUPPORTED');
    }
    return runDemo(opts, signal);
  },
};
