// npm run bench:transfer (root): one sender, three receivers, a 100 MiB random file, 400 Mbit/s
// cap (tbf) towards every receiver, loss 0 / 10 / 30 % on one receiver; iotupd's fountain format,
// UFTP (IPv6) and udpcast (IPv4) run the same way in the same run, on the same lab topology.
// Reports seconds until every receiver holds an intact copy (SHA-256 checked), goodput, reception
// overhead and receiver peak memory; then the receiver's peak memory for a 1 GiB object.
// Three more rows per loss rate: iotupd with 1500-byte packets (--symbol-size 1404, the lab's MTU),
// iotupd receivers in low-memory mode (recv --low-memory), and the
// floors: bare Node processes that only move and count the datagrams (bench/floor-peer.ts), once
// with plain node:dgram and once with iotupd's own paced, batched socket layer.
// Environment: BENCH_MIB (default 100), BENCH_GIB (default 1; 0 skips the large run),
// BENCH_PEERS (default 1; 0 runs only iotupd).
import type { ChildProcess } from 'node:child_process';
import { createHash, randomFillSync } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readSync, rmSync, writeSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Lab, labSupport } from '../src/lab/index.js';

const MiB = 2 ** 20;
const SIZE = Number(process.env.BENCH_MIB ?? 100) * MiB;
const BIG = Number(process.env.BENCH_GIB ?? 1) * 1024 * MiB;
const PEERS = process.env.BENCH_PEERS !== '0';
const CAP_MBIT = 400;
// Our --rate counts IPv6+UDP headers; tbf also counts the 14-byte Ethernet header: stay under the cap.
const FOUNTAIN_RATE = 390;
const LOSSES = [0, 10, 30];
const TIMEOUT_MS = 120_000;
const here = fileURLToPath(new URL('.', import.meta.url));
const MAIN = join(here, '..', 'src', 'cli', 'main.js');
const FLOOR_PEER = join(here, 'floor-peer.js');
/** Symbol size of the extra row with 1500-byte packets (the lab's MTU; UFTP's default packets are ~1350 bytes). */
const MTU_SYMBOL = 1404;

function sha256File(path: string): string {
  const h = createHash('sha256');
  const fd = openSync(path, 'r');
  const buf = Buffer.alloc(8 * MiB);
  try {
    for (;;) {
      const n = readSync(fd, buf, 0, buf.length, null);
      if (n === 0) break;
      h.update(buf.subarray(0, n));
    }
  } finally {
    closeSync(fd);
  }
  return h.digest('hex');
}

function makeFile(path: string, size: number): string {
  const fd = openSync(path, 'w');
  const buf = Buffer.alloc(8 * MiB);
  const h = createHash('sha256');
  try {
    for (let done = 0; done < size; ) {
      const n = Math.min(buf.length, size - done);
      randomFillSync(buf, 0, n);
      writeSync(fd, buf, 0, n);
      h.update(buf.subarray(0, n));
      done += n;
    }
  } finally {
    closeSync(fd);
  }
  return h.digest('hex');
}

interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
  at: number;
  stdout: string;
  stderr: string;
}

function watch(child: ChildProcess): Promise<Exit> {
  let stdout = '';
  let stderr = '';
  child.stdout?.setEncoding('utf8').on('data', (d: string) => (stdout += d.length > 0 ? d : ''));
  child.stderr?.setEncoding('utf8').on('data', (d: string) => (stderr = (stderr + d).slice(-4000)));
  return new Promise((resolve) => child.once('close', (code, signal) => resolve({ code, signal, at: performance.now(), stdout, stderr })));
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T | 'timeout'> {
  return Promise.race([p, new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), ms).unref())]);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Row {
  tool: string;
  loss: number;
  seconds: number | undefined;
  intact: string;
  goodputMbit: number | undefined;
  overhead: string;
  peakMiB: string;
  note: string;
}

/** A result row: time and goodput only count when every receiver holds an intact copy. */
function row(tool: string, loss: number, size: number, seconds: number | undefined, ok: boolean[], rest: Pick<Row, 'overhead' | 'peakMiB' | 'note'>): Row {
  const intact = ok.every(Boolean);
  return {
    tool,
    loss,
    seconds: intact ? seconds : undefined,
    intact: `${ok.filter(Boolean).length}/${ok.length}`,
    goodputMbit: intact && seconds ? (size * 8) / seconds / 1e6 : undefined,
    ...rest,
  };
}

async function setLoss(lab: Lab, loss: number): Promise<void> {
  await lab.impair('r1', { rateMbit: CAP_MBIT });
  await lab.impair('r2', { rateMbit: CAP_MBIT });
  await lab.impair('r3', { rateMbit: CAP_MBIT, lossPercent: loss });
}

function lastJson(stdout: string, type: string): Record<string, unknown> | undefined {
  const lines = stdout.trim().split('\n').reverse();
  for (const l of lines) {
    try {
      const o = JSON.parse(l) as Record<string, unknown>;
      if (o.type === type) return o;
    } catch {
      // not JSON
    }
  }
  return undefined;
}

interface FountainArgs {
  send?: string[];
  recv?: string[];
}

/** The device setting of README "Command line" (`recv --low-memory`; every receiver holds glibc to one malloc arena itself). */
const LOW_MEMORY: FountainArgs = { recv: ['--low-memory'] };

async function runFountain(lab: Lab, dir: string, file: string, hash: string, size: number, loss: number, receivers: string[], timeoutMs = TIMEOUT_MS, extra: FountainArgs = {}): Promise<Row> {
  const sendArgs = extra.send ?? [];
  const recvArgs = extra.recv ?? [];
  const tool = ['iotupd fountain', ...sendArgs, ...recvArgs].join(' ');
  const outs = receivers.map((h) => join(dir, `fountain-${h}.bin`));
  for (const o of outs) rmSync(o, { force: true });
  for (const f of readdirSync(dir)) if (f.endsWith('.iotupd')) rmSync(join(dir, f), { recursive: true, force: true });
  const ch = ['--channel', 'bench.transfer'];
  const rx = receivers.map((h, i) => {
    const host = lab.host(h);
    const child = lab.spawn(host, process.execPath, [MAIN, 'recv', outs[i] as string, ...ch, '--interface', host.ifname, '--json', ...recvArgs]);
    return watch(child);
  });
  await sleep(500);
  const t0 = performance.now();
  const s = lab.host('sender');
  const sender = lab.spawnNode(s, MAIN, ['send', file, ...ch, '--interface', s.ifname, '--rate', String(FOUNTAIN_RATE), '--json', ...sendArgs]);
  const sExit = watch(sender);
  const exits = await withTimeout(Promise.all(rx), timeoutMs);
  sender.kill('SIGTERM');
  await sExit;
  if (exits === 'timeout') {
    return { tool, loss, seconds: undefined, intact: '0/' + receivers.length, goodputMbit: undefined, overhead: '-', peakMiB: '-', note: `no completion in ${timeoutMs / 1000} s` };
  }
  const seconds = (Math.max(...exits.map((e) => e.at)) - t0) / 1000;
  const ok = exits.map((e, i) => e.code === 0 && sha256File(outs[i] as string) === hash);
  const done = exits.map((e) => lastJson(e.stdout, 'stats'));
  const overheads = done.map((d) => Number(d?.overhead ?? NaN));
  const rss = done.map((d) => Number(d?.maxRssKiB ?? NaN) / 1024);
  const received = done.map((d) => Number(d?.received ?? NaN));
  const young = Math.max(...done.map((d) => Number(d?.youngGenerationMiB ?? NaN)));
  for (const o of outs) rmSync(o, { force: true });
  return row(tool, loss, size, seconds, ok, {
    overhead: `${(Math.max(...overheads) * 100).toFixed(2)} %`,
    peakMiB: Math.max(...rss).toFixed(0),
    note: `symbols received ${received.join('/')}; young generation <= ${young} MiB`,
  });
}

/**
 * Waits (half the timeout at most) until every receiver has exited, then stops the sender and any
 * receiver left with `signal`. Seconds run from `t0` to the last receiver's exit.
 */
async function awaitReceivers(rx: { c: ChildProcess; exit: Promise<Exit> }[], sender: ChildProcess, t0: number, signal: NodeJS.Signals): Promise<{ all: Exit[] | 'timeout'; seconds: number | undefined }> {
  const sExit = watch(sender);
  const all = await withTimeout(Promise.all(rx.map((r) => r.exit)), TIMEOUT_MS / 2);
  const seconds = all === 'timeout' ? undefined : (Math.max(...all.map((e) => e.at)) - t0) / 1000;
  sender.kill(signal);
  for (const r of rx) r.c.kill(signal);
  await sExit;
  await Promise.all(rx.map((r) => r.exit));
  return { all, seconds };
}

/**
 * The floors: a bare Node sender and three bare receivers that only count, on the same lab with
 * the same loss, timed like the fountain row from the sender's start until every receiver has
 * counted as many datagrams as the object has source symbols at the default T. No coding, no
 * disk, no hashing.
 * - plain: node:dgram one datagram at a time (trySend as fast as the kernel takes them, the tbf
 *   drops the excess; onMessage). What a Node program that moves datagrams the simple way takes.
 * - batched: the socket layer iotupd itself uses, paced like iotupd (a 4 ms token bucket at
 *   FOUNTAIN_RATE), UDP GSO runs of up to 64 and recvmmsg. What iotupd would take here if its
 *   coding, spooling, hashing and decoding cost nothing.
 */
async function runFloor(lab: Lab, size: number, loss: number, receivers: string[], batched: boolean): Promise<Row> {
  const group = 'ff15::f100';
  const need = Math.ceil(size / 1184);
  const rx = receivers.map((h) => {
    const host = lab.host(h);
    const c = lab.spawnNode(host, FLOOR_PEER, ['recv', host.ifname, group, String(need), ...(batched ? ['batch'] : [])]);
    return { c, exit: watch(c) };
  });
  await sleep(500);
  const s = lab.host('sender');
  const t0 = performance.now();
  const sender = lab.spawnNode(s, FLOOR_PEER, ['send', s.ifname, group, String(Math.ceil((need / (1 - loss / 100)) * 1.5)), '1232', ...(batched ? [String(FOUNTAIN_RATE)] : [])]);
  const { all, seconds } = await awaitReceivers(rx, sender, t0, 'SIGTERM');
  const ok = all === 'timeout' ? receivers.map(() => false) : all.map((e) => e.code === 0);
  const tool = batched ? `floor: batched I/O paced at ${FOUNTAIN_RATE} Mbit/s, no coding` : 'floor: bare node:dgram, no coding';
  return row(tool, loss, size, seconds, ok, { overhead: '-', peakMiB: '-', note: `${need} datagrams of 1232 bytes to each receiver` });
}

async function runUftp(lab: Lab, dir: string, file: string, hash: string, size: number, loss: number, receivers: string[]): Promise<Row> {
  const pub = 'ff15::1:4242';
  const priv = 'ff15::1:4243';
  const dests = receivers.map((h) => join(dir, `uftp-${h}`));
  for (const d of dests) {
    rmSync(d, { recursive: true, force: true });
    mkdirSync(d, { recursive: true });
  }
  const daemons = receivers.map((h, i) => {
    const host = lab.host(h);
    // UFTP resolves -I as a host name or address (an interface name fails here): give the address.
    const c = lab.spawn(host, 'uftpd', ['-d', '-I', host.address, '-M', pub, '-D', dests[i] as string, '-q', '-B', String(8 * MiB), '-x', '1']);
    return { c, exit: watch(c) };
  });
  await sleep(800);
  const s = lab.host('sender');
  const t0 = performance.now();
  const sender = lab.spawn(s, 'uftp', ['-I', s.address, '-M', pub, '-P', priv, '-R', String(FOUNTAIN_RATE * 1000), '-Y', 'none', '-B', String(8 * MiB), '-x', '1', file]);
  const res = await withTimeout(watch(sender), TIMEOUT_MS);
  const seconds = res === 'timeout' ? undefined : (res.at - t0) / 1000;
  if (res === 'timeout') sender.kill('SIGKILL');
  for (const d of daemons) d.c.kill('SIGTERM');
  await Promise.all(daemons.map((d) => d.exit));
  const name = file.split('/').pop() as string;
  const ok = dests.map((d) => existsSync(join(d, name)) && sha256File(join(d, name)) === hash);
  for (const d of dests) rmSync(d, { recursive: true, force: true });
  return row('UFTP (IPv6)', loss, size, seconds, ok, {
    overhead: 'n/a (NAK repair)',
    peakMiB: '-',
    note: res === 'timeout' ? `no completion in ${TIMEOUT_MS / 1000} s` : `uftp exit ${String(res.code)}`,
  });
}

async function runUdpcast(lab: Lab, dir: string, file: string, hash: string, size: number, loss: number, receivers: string[]): Promise<Row> {
  const outs = receivers.map((h) => join(dir, `udpcast-${h}.bin`));
  for (const o of outs) rmSync(o, { force: true });
  const rx = receivers.map((h, i) => {
    const host = lab.host(h);
    const c = lab.spawn(host, 'udp-receiver', ['--interface', host.ifname, '--file', outs[i] as string, '--nokbd', '--portbase', '9000'], { stdio: ['ignore', 'pipe', 'pipe'] });
    return { c, exit: watch(c) };
  });
  await sleep(500);
  const s = lab.host('sender');
  const t0 = performance.now();
  const sender = lab.spawn(
    s,
    'udp-sender',
    ['--interface', s.ifname, '--file', file, '--nokbd', '--min-receivers', String(receivers.length), '--max-bitrate', `${FOUNTAIN_RATE}m`, '--portbase', '9000'],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const { all, seconds } = await awaitReceivers(rx, sender, t0, 'SIGKILL');
  const ok = outs.map((o) => existsSync(o) && sha256File(o) === hash);
  for (const o of outs) rmSync(o, { force: true });
  return row('udpcast (IPv4)', loss, size, seconds, ok, {
    overhead: 'n/a (ACK/NAK)',
    peakMiB: '-',
    note: all === 'timeout' ? `no completion in ${TIMEOUT_MS / 2000} s` : '',
  });
}

function table(rows: Row[]): string {
  const head = ['tool', 'loss on r3', 'seconds', 'intact', 'goodput Mbit/s', 'reception overhead', 'rx peak MiB', 'note'];
  const body = rows.map((r) => [
    r.tool,
    `${r.loss} %`,
    r.seconds === undefined ? 'failed' : r.seconds.toFixed(2),
    r.intact,
    r.goodputMbit === undefined ? '-' : r.goodputMbit.toFixed(0),
    r.overhead,
    r.peakMiB,
    r.note,
  ]);
  return [head, head.map(() => '---'), ...body].map((cols) => `| ${cols.join(' | ')} |`).join('\n');
}

async function main(): Promise<void> {
  const support = labSupport();
  if (!support.ok || process.getuid?.() !== 0) {
    console.log(`bench:transfer needs root and the network lab: ${support.ok ? 'not root' : support.reason}`);
    process.exitCode = 1;
    return;
  }
  const dir = mkdtempSync(join(tmpdir(), 'iotupd-bench-transfer-'));
  const lab = await Lab.create({ hosts: ['sender', 'r1', 'r2', 'r3'] });
  try {
    // IPv4 addresses for udpcast (the lab itself is IPv6-only).
    for (const [i, h] of ['sender', 'r1', 'r2', 'r3'].entries()) {
      const host = lab.host(h);
      // udpcast finds its peers by broadcast and sends control to 224.0.0.1: a broadcast address and a multicast route.
      await lab.exec(host, 'ip', ['addr', 'add', `10.231.0.${i + 1}/24`, 'brd', '+', 'dev', host.ifname]);
      await lab.exec(host, 'ip', ['route', 'add', '224.0.0.0/4', 'dev', host.ifname]);
    }
    const file = join(dir, 'image.bin');
    const hash = makeFile(file, SIZE);
    console.log(`# bench:transfer ${new Date().toISOString()}: ${SIZE / MiB} MiB, ${CAP_MBIT} Mbit/s tbf cap per receiver, loss on r3 only`);
    const rows: Row[] = [];
    for (const loss of LOSSES) {
      await setLoss(lab, loss);
      const r = await runFountain(lab, dir, file, hash, SIZE, loss, ['r1', 'r2', 'r3']);
      console.log(JSON.stringify(r));
      rows.push(r);
      const m = await runFountain(lab, dir, file, hash, SIZE, loss, ['r1', 'r2', 'r3'], TIMEOUT_MS, { send: ['--symbol-size', String(MTU_SYMBOL)] });
      console.log(JSON.stringify(m));
      rows.push(m);
      const lm = await runFountain(lab, dir, file, hash, SIZE, loss, ['r1', 'r2', 'r3'], TIMEOUT_MS, LOW_MEMORY);
      console.log(JSON.stringify(lm));
      rows.push(lm);
      for (const batched of [false, true]) {
        const f = await runFloor(lab, SIZE, loss, ['r1', 'r2', 'r3'], batched);
        console.log(JSON.stringify(f));
        rows.push(f);
      }
      if (PEERS) {
        const u = await runUftp(lab, dir, file, hash, SIZE, loss, ['r1', 'r2', 'r3']);
        console.log(JSON.stringify(u));
        rows.push(u);
        const c = await runUdpcast(lab, dir, file, hash, SIZE, loss, ['r1', 'r2', 'r3']);
        console.log(JSON.stringify(c));
        rows.push(c);
      }
    }
    console.log('\n' + table(rows) + '\n');
    for (const loss of [10, 30]) {
      const uftp = rows.find((r) => r.tool.startsWith('UFTP') && r.loss === loss);
      for (const ours of rows.filter((r) => (r.tool.startsWith('iotupd') || r.tool.startsWith('floor')) && r.loss === loss)) {
        if (ours.seconds && uftp?.seconds) console.log(`${ours.tool} / UFTP time at ${loss} % loss: ${(ours.seconds / uftp.seconds).toFixed(2)} x (target for iotupd ${loss === 10 ? 0.75 : 0.6} x)`);
      }
    }
    rmSync(file, { force: true });
    if (BIG > 0) {
      const big = join(dir, 'big.bin');
      const bigHash = makeFile(big, BIG);
      await lab.impair('r3', { rateMbit: CAP_MBIT, lossPercent: 10 });
      // The default receiver, then the low-memory one (no warm-up, more scavenges).
      for (const extra of [{}, LOW_MEMORY]) {
        const r = await runFountain(lab, dir, big, bigHash, BIG, 10, ['r3'], 15 * TIMEOUT_MS, extra);
        console.log(JSON.stringify(r));
        console.log(`\n${BIG / MiB} MiB object, one receiver at 10 % loss, ${r.tool}: ${r.seconds?.toFixed(1)} s, intact ${r.intact}, receiver peak RSS (VmHWM) ${r.peakMiB} MiB, overhead ${r.overhead}`);
      }
      rmSync(big, { force: true });
    }
  } finally {
    await lab.destroy();
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
