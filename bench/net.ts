/**
 * bench:net — send rate of one sender process and receiver loss, inside a lab.
 *
 *   npm run bench:net [-- --seconds 2 --rounds 3 --size 1200 --rates 10000,30000,50000,70000]
 *
 * Send rate: McastSocket.trySend (unconnected and after connect()), McastSocket.sendBurst (32
 * datagrams per call: one sendmsg() with UDP GSO when the native addon is built; the line says
 * which), McastSocket.send (promise per datagram), plain node:dgram
 * unconnected send(buf, port, addr) and connected send(buf), each as fast as one process can,
 * rounds interleaved, median reported. Loss: a paced McastSocket sender and one receiver
 * (8 MiB SO_RCVBUF requested, onMessage fast path); counts from the receiver and
 * Udp6RcvbufErrors from /proc/net/snmp6 of the receiving namespace; then one sender and
 * three receivers; then the receive cost (CPU per datagram) of onMessage against onDatagrams.
 * Needs root (or re-runs itself in `unshare -rnm`, where rmem_max cannot be raised).
 */
import { createSocket } from 'node:dgram';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Lab, labSupport, reexecInUserns } from '../src/lab/index.js';
import { startReceiver } from '../src/lab/testing.js';
import { McastSocket, resolveInterface } from '../src/net/index.js';

const SELF = fileURLToPath(import.meta.url);
const GROUP = 'ff1e::be:1';
const PORT = 4242;

type Mode = 'mcast-trysend' | 'mcast-connected' | 'mcast-burst' | 'mcast-send' | 'dgram' | 'dgram-connected';
const MODES: Mode[] = ['mcast-trysend', 'mcast-connected', 'mcast-burst', 'mcast-send', 'dgram', 'dgram-connected'];
/** Datagrams per McastSocket.sendBurst call in mode mcast-burst (one sendmsg with UDP GSO). */
const BURST = 32;

interface SendResult {
  mode: Mode;
  sent: number;
  elapsedMs: number;
  /** CPU time (user + system) the sender process used while sending, microseconds */
  cpuUs: number;
  /** mcast-burst: 'gso', or why not */
  gso: string;
}

const tick = (): Promise<void> => new Promise((r) => setImmediate(r));
const sleep1 = (): Promise<void> => new Promise((r) => setTimeout(r, 1));

/** Child: send 1200-byte datagrams for `seconds` (or `count` at `rate`), print JSON. */
async function sendChild(mode: Mode, ifname: string, size: number, seconds: number, rate: number, count: number): Promise<void> {
  const iface = resolveInterface(ifname); // the bench never uses an unchecked interface name
  const buf = new Uint8Array(size).fill(0x5a);
  const dv = new DataView(buf.buffer);
  dv.setUint32(0, 0x49555042); // probe header: 'IUPB', id, seq
  dv.setUint32(4, 1);
  let sent = 0;
  const limitMs = seconds * 1000;
  const total = count > 0 ? count : Infinity;
  // sendOne: true = sent, false = refused (back-pressure: await drain()), Promise = sent when settled
  let sendOne: () => boolean | Promise<void>;
  let drain: () => Promise<void> = () => Promise.resolve();
  let finish: () => Promise<void>;
  let gso = '';
  if (mode === 'mcast-burst') {
    // sendBurst does not copy: BURST buffers, refilled only once the kernel took all of them
    const sock = await McastSocket.open({ interface: iface.name, port: 0 });
    await sock.connect(GROUP, PORT);
    gso = sock.gso.enabled ? 'gso' : `no gso: ${sock.gso.reason}`;
    const run = Array.from({ length: BURST }, () => buf.slice());
    let at = BURST; // datagrams of the run counted as sent
    let next = BURST; // next datagram of the run to hand to the kernel
    sendOne = () => {
      if (at === BURST) {
        for (const [i, d] of run.entries()) new DataView(d.buffer).setUint32(8, sent + i);
        at = 0;
        next = 0;
      }
      // the whole run goes to the kernel first (false: back-pressure, drain and call again)
      while (next < BURST) {
        const n = sock.sendBurst(run, next, BURST, GROUP, PORT);
        if (n === 0) return false;
        next += n;
      }
      at++;
      return true;
    };
    drain = () => sock.drain();
    finish = async () => {
      await sock.drain();
      await sock.close();
    };
  } else if (mode.startsWith('mcast-')) {
    const sock = await McastSocket.open({ interface: iface.name, port: 0 });
    if (mode === 'mcast-connected') await sock.connect(GROUP, PORT);
    sendOne = mode === 'mcast-send' ? () => sock.send(buf, GROUP, PORT) : () => sock.trySend(buf, GROUP, PORT);
    drain = () => sock.drain();
    finish = async () => {
      await sock.drain();
      await sock.close();
    };
  } else {
    const s = createSocket({ type: 'udp6' });
    await new Promise<void>((r) => s.bind(0, '::', () => r()));
    s.setMulticastInterface(`::%${iface.name}`);
    s.setMulticastTTL(255);
    if (mode === 'dgram-connected') {
      await new Promise<void>((r) => s.connect(PORT, GROUP, () => r()));
      sendOne = () => {
        s.send(buf);
        return true;
      };
    } else {
      sendOne = () => {
        s.send(buf, PORT, GROUP);
        return true;
      };
    }
    finish = () => new Promise((r) => s.close(() => r()));
  }
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  let now = t0;
  while (sent < total && now - t0 < limitMs) {
    let budget = 256;
    if (rate > 0) {
      budget = Math.min(budget, Math.floor(((now - t0) / 1000) * rate) - sent);
      if (budget <= 0) {
        await sleep1();
        now = performance.now();
        continue;
      }
    }
    for (; budget > 0 && sent < total; budget--) {
      dv.setUint32(8, sent);
      const r = sendOne();
      if (r === false) {
        await drain();
        continue;
      }
      if (r !== true) await r;
      sent++;
    }
    await tick();
    now = performance.now();
  }
  const elapsedMs = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  await finish();
  process.stdout.write(JSON.stringify({ mode, sent, elapsedMs, cpuUs: cpu.user + cpu.system, gso } satisfies SendResult) + '\n');
}

async function runSendChild(lab: Lab, mode: Mode, size: number, seconds: number, rate = 0, count = 0): Promise<SendResult> {
  const h = lab.host('sender');
  const child = lab.spawnNode(h, SELF, ['--role', 'send', '--mode', mode, '--interface', h.ifname, '--size', String(size), '--seconds', String(seconds), '--rate', String(rate), '--count', String(count)]);
  let out = '';
  let err = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (out += d));
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (err += d));
  const code = await new Promise<number | null>((r) => child.once('close', r));
  if (code !== 0) throw new Error(`sender ${mode} failed: ${err.trim()}`);
  return JSON.parse(out.trim().split('\n').pop()!) as SendResult;
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
};
const fmt = (n: number, w: number): string => String(n).padStart(w);

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      role: { type: 'string' }, mode: { type: 'string' }, interface: { type: 'string' }, size: { type: 'string', default: '1200' },
      seconds: { type: 'string', default: '2' }, rate: { type: 'string', default: '0' }, count: { type: 'string', default: '0' },
      rounds: { type: 'string', default: '3' }, rates: { type: 'string', default: '10000,30000,50000,70000' },
    },
  });
  const size = Number(values.size);
  if (values.role === 'send') {
    await sendChild(values.mode as Mode, String(values.interface), size, Number(values.seconds), Number(values.rate), Number(values.count));
    return;
  }
  reexecInUserns();
  const support = labSupport();
  if (!support.ok) {
    console.error(`bench:net: network lab unavailable: ${support.reason}`);
    process.exit(2);
  }
  const seconds = Number(values.seconds);
  const rounds = Number(values.rounds);
  const rates = String(values.rates).split(',').map(Number);
  const lab = await Lab.create({ hosts: ['sender', 'recv', 'recv2', 'recv3'] });
  try {
    console.log(`lab ${lab.id} (${support.mode}); net.core.rmem_max ${lab.rmemMax}; ${size}-byte payloads; node ${process.version}`);
    console.log(`\nSend rate, one process, no receiver joined, ${seconds} s x ${rounds} rounds interleaved (median):`);
    // Wall-clock rate depends on how much CPU the scheduler gave us; CPU time per datagram
    // (user + system of the sender process) does much less, so both are shown.
    const results = new Map<Mode, number[]>(MODES.map((m) => [m, []]));
    const cpuPer = new Map<Mode, number[]>(MODES.map((m) => [m, []]));
    let gso = '';
    for (let r = 0; r < rounds; r++) {
      for (const m of MODES) {
        const res = await runSendChild(lab, m, size, seconds);
        if (m === 'mcast-burst') gso = res.gso;
        results.get(m)!.push((res.sent / res.elapsedMs) * 1000);
        cpuPer.get(m)!.push(res.cpuUs / res.sent);
      }
    }
    const base = median(results.get('dgram')!);
    const baseCpu = median(cpuPer.get('dgram')!);
    const baseConnected = median(results.get('dgram-connected')!);
    const baseConnectedCpu = median(cpuPer.get('dgram-connected')!);
    console.log('  mode                datagrams/s   Mbit/s   vs dgram   CPU us/dgram   per CPU-second   vs dgram   rounds (wall)');
    for (const m of MODES) {
      const xs = results.get(m)!;
      const pps = median(xs);
      const mbit = (pps * size * 8) / 1e6;
      const us = median(cpuPer.get(m)!);
      console.log(
        `  ${m.padEnd(18)} ${fmt(Math.round(pps), 12)} ${fmt(Math.round(mbit), 8)} ${fmt(Math.round((pps / base) * 100), 8)} % ${fmt(Number(us.toFixed(2)), 14)} ${fmt(Math.round(1e6 / us), 16)} ${fmt(Math.round((baseCpu / us) * 100), 8)} %   ${xs.map((x) => Math.round(x / 1000) + 'k').join(' ')}`,
      );
    }
    const mc = median(results.get('mcast-connected')!);
    const mcCpu = median(cpuPer.get('mcast-connected')!);
    console.log(
      `  connected: McastSocket ${Math.round((mc / baseConnected) * 100)} % of plain connected node:dgram (wall), ${Math.round((baseConnectedCpu / mcCpu) * 100)} % (per CPU-second)`,
    );
    console.log(`  (vs dgram = median of this mode / median of plain unconnected node:dgram; mcast-burst: ${BURST} per sendBurst, ${gso})`);
    console.log(`\nReceiver loss, paced McastSocket sender (connected, trySend) -> one receiver (8 MiB SO_RCVBUF requested), ${seconds} s per rate:`);
    console.log('  target/s   sent/s   received   lost     loss %   Udp6RcvbufErrors   rcvbuf granted');
    for (const rate of [...rates, 0]) {
      const count = rate > 0 ? Math.round(rate * seconds) : 0;
      const before = await lab.snmp6('recv');
      const rx = startReceiver(lab, 'recv', ['--group', GROUP, '--fast', '--idle-ms', '1000', '--timeout-ms', String(seconds * 1000 + 15000)]);
      await rx.ready;
      const s = await runSendChild(lab, 'mcast-connected', size, rate > 0 ? seconds * 3 : seconds, rate, count);
      const r = await rx.done;
      const after = await lab.snmp6('recv');
      const rcvbufErr = (after.Udp6RcvbufErrors ?? 0) - (before.Udp6RcvbufErrors ?? 0);
      const lost = s.sent - r.unique;
      if (process.env.BENCH_DEBUG) console.log(JSON.stringify(s), JSON.stringify({ ...r, sources: r.sources.length }));
      console.log(
        `  ${(rate > 0 ? String(rate) : 'max').padStart(8)} ${fmt(Math.round((s.sent / s.elapsedMs) * 1000), 8)} ${fmt(r.unique, 10)} ${fmt(lost, 6)} ${fmt(Number(((lost / s.sent) * 100).toFixed(2)), 10)} ${fmt(rcvbufErr, 18)} ${fmt(r.recvBufferSize, 16)}`,
      );
    }

    console.log(`\nOne sender, three receivers (all processes share the machine's cores), ${seconds} s per rate:`);
    console.log('  target/s   sent/s   received (each)             loss % (worst)   Udp6RcvbufErrors (sum)');
    for (const rate of [30000, 0]) {
      const count = rate > 0 ? Math.round(rate * seconds) : 0;
      const hosts = ['recv', 'recv2', 'recv3'];
      const before = await Promise.all(hosts.map((h) => lab.snmp6(h)));
      const rxs = hosts.map((h) => startReceiver(lab, h, ['--group', GROUP, '--fast', '--idle-ms', '1000', '--timeout-ms', String(seconds * 1000 + 15000)]));
      await Promise.all(rxs.map((r) => r.ready));
      const s = await runSendChild(lab, 'mcast-connected', size, rate > 0 ? seconds * 3 : seconds, rate, count);
      const rs = await Promise.all(rxs.map((r) => r.done));
      const after = await Promise.all(hosts.map((h) => lab.snmp6(h)));
      const errs = after.reduce((a, x, i) => a + (x.Udp6RcvbufErrors ?? 0) - (before[i]!.Udp6RcvbufErrors ?? 0), 0);
      const worst = Math.max(...rs.map((r) => (s.sent - r.unique) / s.sent));
      console.log(
        `  ${(rate > 0 ? String(rate) : 'max').padStart(8)} ${fmt(Math.round((s.sent / s.elapsedMs) * 1000), 8)}   ${rs.map((r) => r.unique).join(' / ').padEnd(26)} ${fmt(Number((worst * 100).toFixed(2)), 15)} ${fmt(errs, 24)}`,
      );
    }

    // Receive cost: the same paced stream to a node:dgram receiver (onMessage, one recvmsg() and
    // one JS event per datagram) and a batch receiver (onDatagrams, recvmmsg() through the addon).
    console.log(`\nReceive cost, one sender (sendBurst) -> two receivers in the same run: node:dgram (onMessage) and recvmmsg (onDatagrams), ${seconds} s per rate:`);
    console.log('  target/s   mode          received   CPU us/datagram   batch');
    for (const rate of [20000, 40000]) {
      const count = Math.round(rate * seconds);
      const plain = startReceiver(lab, 'recv', ['--group', GROUP, '--fast', '--idle-ms', '1000', '--timeout-ms', String(seconds * 1000 + 15000)]);
      const batch = startReceiver(lab, 'recv2', ['--group', GROUP, '--batch', '--idle-ms', '1000', '--timeout-ms', String(seconds * 1000 + 15000)]);
      await Promise.all([plain.ready, batch.ready]);
      await runSendChild(lab, 'mcast-burst', size, seconds * 3, rate, count);
      const [p, b] = await Promise.all([plain.done, batch.done]);
      for (const [name, r] of [['node:dgram', p], ['recvmmsg', b]] as const) {
        // the idle timeout (1 s of waiting) is in the CPU time too, but costs next to nothing
        console.log(`  ${String(rate).padStart(8)}   ${name.padEnd(12)} ${fmt(r.unique, 9)} ${fmt(Number((r.cpuUs / Math.max(1, r.unique)).toFixed(2)), 17)}   ${r.recvBatch}`);
      }
    }
  } finally {
    await lab.destroy();
  }
}

main().catch((err: unknown) => {
  console.error(`bench:net: ${(err as Error).stack ?? String(err)}`);
  process.exit(1);
});
