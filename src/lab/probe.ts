#!/usr/bin/env node
/**
 * A multicast probe for lab tests and benchmarks, run inside a lab host:
 *
 *   node probe.js recv --interface IF --group G [--source S] [--port P] [--bind-group] [--batch]
 *                      [--rcvbuf BYTES] [--expect N] [--idle-ms MS] [--timeout-ms MS] [--fast]
 *                      [--queue-limit N] [--stall-ms MS] [--stall-until-received N] [--until-id ID]
 *   node probe.js send --interface IF --group G [--port P] [--count N] [--size B] [--rate PPS] [--id N] [--sndbuf BYTES] [--connect]
 *                      [--hop-limit N] [--loopback] [--burst N [--short-every K]]
 *
 * --burst N (needs --connect) sends N datagrams at a time with McastSocket.sendBurst (UDP GSO
 * when available); --short-every K makes every K-th datagram half as long (it ends a GSO run).
 *
 * Datagrams carry 'IUPB', sender id (u32), seq (u32) and filler. The receiver prints one JSON
 * line {"event":"ready",...} once joined and {"event":"done",...} with counts at the end
 * (unique, duplicates, foreign = datagrams without the probe header). With --until-id ID the
 * receiver ends at the first datagram from sender ID (an end marker; counted only in perId);
 * SIGTERM also ends it with its counts printed.
 */
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import { McastSocket, type Datagram } from '../net/index.js';

/** Absolute path of this script (for lab.spawnNode). */
export const PROBE_SCRIPT = fileURLToPath(import.meta.url);

const MAGIC = 0x49555042; // 'IUPB'
const MAX_SEQ = 1 << 22; // 512 KiB of seen-bits per sender id

export interface ProbeRecvResult {
  event: 'done';
  received: number;
  unique: number;
  duplicates: number;
  foreign: number;
  bytes: number;
  queueDrops: number;
  /** datagrams the socket got from the kernel (received counts what the consumer took) */
  kernelReceived: number;
  recvBufferSize: number;
  /** unique datagrams per sender id */
  perId: Record<string, number>;
  /** source addresses seen */
  sources: string[];
  firstMs: number;
  lastMs: number;
  /** times a sender's sequence skipped ahead (one per run of missing datagrams, in order) */
  gaps: number;
  /** 'on' when --batch read by recvmmsg(), else why not (or 'unused') */
  recvBatch: string;
  /** datagrams lost to the batch slot (see McastSocketStats.truncated) */
  truncated: number;
  /** CPU time (user + system) of the receiver process from joining to the end, microseconds */
  cpuUs: number;
}

export interface ProbeSendResult {
  event: 'done';
  sent: number;
  bytes: number;
  elapsedMs: number;
  pps: number;
  sendErrors: number;
  /** trySend calls refused (libuv's queue was non-empty: back-pressure) */
  refused: number;
  lastSendError?: string;
  /** sendmsg calls that carried several datagrams (--burst with UDP GSO) */
  gsoCalls: number;
  /** 'on', or why sendBurst did not use GSO */
  gso: string;
}

function out(obj: unknown): void {
  process.stdout.write(JSON.stringify(obj) + '\n');
}

async function recv(v: Record<string, string | boolean | undefined>): Promise<void> {
  const group = String(v.group);
  const sock = await McastSocket.open({
    interface: String(v.interface),
    port: Number(v.port ?? 4242),
    bindAddress: v['bind-group'] ? group : undefined,
    recvBufferSize: v.rcvbuf ? Number(v.rcvbuf) : undefined,
    queueLimit: v['queue-limit'] ? Number(v['queue-limit']) : undefined,
  });
  sock.join(group, typeof v.source === 'string' ? v.source : undefined);
  const expect = Number(v.expect ?? 0);
  const idleMs = Number(v['idle-ms'] ?? 0);
  const timeoutMs = Number(v['timeout-ms'] ?? 30000);
  const seen = new Map<number, Uint8Array>();
  const r: ProbeRecvResult = {
    event: 'done', received: 0, unique: 0, duplicates: 0, foreign: 0, bytes: 0, queueDrops: 0, kernelReceived: 0,
    recvBufferSize: sock.recvBufferSize, perId: {}, sources: [], firstMs: 0, lastMs: 0, gaps: 0, recvBatch: 'unused', truncated: 0, cpuUs: 0,
  };
  const cpu0 = process.cpuUsage();
  const lastSeq = new Map<number, number>();
  const sources = new Set<string>();
  const t0 = performance.now();
  let last = t0;
  // --until-id N: a datagram from sender id N is an end marker. Markers sent after a burst
  // from the same host arrive after it (FIFO along the path), so tests need no idle timers.
  const untilId = v['until-id'] !== undefined ? Number(v['until-id']) : -1;
  let markerSeen = false;
  const take = (d: Datagram): void => {
    if (untilId >= 0 && d.data.length >= 12) {
      const mv = new DataView(d.data.buffer, d.data.byteOffset, d.data.byteLength);
      if (mv.getUint32(0) === MAGIC && mv.getUint32(4) === untilId) {
        r.perId[untilId] = (r.perId[untilId] ?? 0) + 1;
        markerSeen = true;
        return;
      }
    }
    const now = performance.now();
    if (r.received === 0) r.firstMs = now - t0;
    last = now;
    r.lastMs = now - t0;
    r.received++;
    r.bytes += d.data.length;
    sources.add(d.from);
    if (d.data.length < 12) {
      r.foreign++;
      return;
    }
    const dv = new DataView(d.data.buffer, d.data.byteOffset, d.data.byteLength);
    const seq = dv.getUint32(8);
    if (dv.getUint32(0) !== MAGIC || seq >= MAX_SEQ) {
      r.foreign++;
      return;
    }
    const id = dv.getUint32(4);
    const prev = lastSeq.get(id) ?? -1;
    if (seq > prev + 1) r.gaps++;
    if (seq > prev) lastSeq.set(id, seq);
    let bits = seen.get(id);
    if (!bits) {
      if (seen.size >= 16) {
        r.foreign++;
        return;
      }
      bits = new Uint8Array(MAX_SEQ / 8);
      seen.set(id, bits);
    }
    const m = 1 << (seq & 7);
    if (bits[seq >> 3]! & m) {
      r.duplicates++;
    } else {
      bits[seq >> 3] = bits[seq >> 3]! | m;
      r.unique++;
      r.perId[id] = (r.perId[id] ?? 0) + 1;
    }
  };
  // SIGTERM ends the receiver normally (it still prints its counts)
  process.once('SIGTERM', () => void sock.close());
  out({ event: 'ready', recvBufferSize: sock.recvBufferSize, port: sock.port });
  const done = (): boolean => markerSeen || (expect > 0 && r.unique >= expect);
  const timer = setInterval(() => {
    const now = performance.now();
    if (now - t0 > timeoutMs || (idleMs > 0 && r.received > 0 && now - last > idleMs)) void sock.close();
  }, 20);
  if (v.fast || v.batch) {
    const onOne = (d: Datagram): void => {
      take(d);
      if (done()) void sock.close();
    };
    // --batch: McastSocket.onDatagrams (recvmmsg when the native addon is there); no source address
    if (v.batch) {
      sock.onDatagrams((data) => onOne({ data, from: '?', port: 0 }));
      r.recvBatch = sock.recvBatch.enabled ? 'on' : sock.recvBatch.reason;
    } else {
      sock.onMessage(onOne);
    }
    await new Promise<void>((resolve) => {
      const check = setInterval(() => {
        if (sock.closed) {
          clearInterval(check);
          resolve();
        }
      }, 10);
    });
  } else {
    // --stall-ms: a consumer that starts late, to exercise the bounded queue
    const stall = Number(v['stall-ms'] ?? 0);
    if (stall > 0) await new Promise((res) => setTimeout(res, stall));
    // --stall-until-received N: start consuming only once N datagrams reached the socket
    const stallN = Number(v['stall-until-received'] ?? 0);
    while (stallN > 0 && sock.stats.received < stallN && !sock.closed) await new Promise((res) => setTimeout(res, 10));
    for await (const d of sock) {
      take(d);
      if (done()) break;
    }
  }
  clearInterval(timer);
  r.queueDrops = sock.stats.queueDrops;
  r.truncated = sock.stats.truncated;
  const cpu = process.cpuUsage(cpu0);
  r.cpuUs = cpu.user + cpu.system;
  r.kernelReceived = sock.stats.received;
  r.sources = [...sources];
  await sock.close();
  out(r);
}

async function send(v: Record<string, string | boolean | undefined>): Promise<void> {
  const group = String(v.group);
  const port = Number(v.port ?? 4242);
  const count = Number(v.count ?? 1000);
  const size = Number(v.size ?? 1200);
  const rate = Number(v.rate ?? 0);
  const id = Number(v.id ?? 1);
  if (!(size >= 12 && size <= 65000)) throw new Error('--size must be 12..65000');
  const sock = await McastSocket.open({
    interface: String(v.interface),
    port: 0,
    sendBufferSize: v.sndbuf ? Number(v.sndbuf) : undefined,
    hopLimit: v['hop-limit'] !== undefined ? Number(v['hop-limit']) : undefined,
    loopback: v.loopback === true,
  });
  if (v.connect) await sock.connect(group, port);
  let refused = 0;
  const burst = Number(v.burst ?? 0);
  const shortEvery = Number(v['short-every'] ?? 0);
  if (burst > 0 && !v.connect) throw new Error('--burst needs --connect');
  const t0 = performance.now();
  if (burst > 0) {
    // fresh buffers per run: sendBurst does not copy
    let seq = 0;
    while (seq < count) {
      const run: Uint8Array[] = [];
      for (let i = 0; i < burst && seq + i < count; i++) {
        const n = shortEvery > 0 && (seq + i + 1) % shortEvery === 0 ? Math.max(12, size >> 1) : size;
        const d = new Uint8Array(n).fill(0x5a);
        const w = new DataView(d.buffer);
        w.setUint32(0, MAGIC);
        w.setUint32(4, id);
        w.setUint32(8, seq + i);
        run.push(d);
      }
      for (let at = 0; at < run.length; ) {
        const k = sock.sendBurst(run, at, run.length, group, port);
        if (k === 0) {
          refused++;
          await sock.drain();
        }
        at += k;
      }
      seq += run.length;
      if (rate > 0) {
        const ahead = (seq / rate) * 1000 - (performance.now() - t0);
        if (ahead > 0) await new Promise((r) => setTimeout(r, ahead));
      } else {
        await new Promise((r) => setImmediate(r));
      }
    }
  }
  // one buffer, rewritten right after each trySend: trySend copies, so this is safe
  const buf = new Uint8Array(size).fill(0x5a);
  const dv = new DataView(buf.buffer);
  dv.setUint32(0, MAGIC);
  dv.setUint32(4, id);
  let seq = burst > 0 ? count : 0;
  while (seq < count) {
    let budget = 256;
    if (rate > 0) {
      const due = Math.floor(((performance.now() - t0) / 1000) * rate);
      budget = Math.min(budget, due - seq);
      if (budget <= 0) {
        await new Promise((r) => setTimeout(r, 1));
        continue;
      }
    }
    while (budget > 0 && seq < count) {
      dv.setUint32(8, seq);
      if (!sock.trySend(buf, group, port)) {
        refused++;
        await sock.drain();
        continue;
      }
      seq++;
      budget--;
    }
    await new Promise((r) => setImmediate(r));
  }
  await sock.drain();
  const elapsedMs = performance.now() - t0;
  const r: ProbeSendResult = {
    event: 'done', sent: sock.stats.sent, bytes: sock.stats.bytesSent, elapsedMs,
    pps: Math.round((sock.stats.sent / elapsedMs) * 1000), sendErrors: sock.stats.sendErrors, refused,
    gsoCalls: sock.stats.gsoCalls, gso: sock.gso.enabled ? 'on' : sock.gso.reason,
    ...(sock.lastSendError ? { lastSendError: sock.lastSendError.message } : {}),
  };
  await sock.close();
  out(r);
}

async function main(): Promise<void> {
  const { positionals, values } = parseArgs({
    allowPositionals: true,
    options: {
      interface: { type: 'string' }, group: { type: 'string' }, source: { type: 'string' }, port: { type: 'string' },
      'bind-group': { type: 'boolean' }, batch: { type: 'boolean' }, rcvbuf: { type: 'string' }, expect: { type: 'string' }, 'idle-ms': { type: 'string' },
      'timeout-ms': { type: 'string' }, fast: { type: 'boolean' }, count: { type: 'string' }, size: { type: 'string' },
      rate: { type: 'string' }, id: { type: 'string' }, 'queue-limit': { type: 'string' }, 'stall-ms': { type: 'string' }, 'until-id': { type: 'string' }, 'stall-until-received': { type: 'string' }, sndbuf: { type: 'string' }, connect: { type: 'boolean' }, 'hop-limit': { type: 'string' }, loopback: { type: 'boolean' },
      burst: { type: 'string' }, 'short-every': { type: 'string' },
    },
  });
  if (positionals[0] === 'recv') await recv(values);
  else if (positionals[0] === 'send') await send(values);
  else throw new Error('usage: probe.js recv|send --interface IF --group G ...');
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  main().catch((err: unknown) => {
    process.stderr.write(`probe: ${(err as Error).message}\n`);
    process.exit(1);
  });
}
