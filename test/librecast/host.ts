#!/usr/bin/env node
/**
 * Runs inside a lab host for test/librecast/api.test.ts (not a test file itself). Prints JSON
 * lines of observations; the test makes the assertions.
 *
 *   node host.js local IFNAME                       one host: join/part, loopback, clock, drops, abort, close
 *   node host.js send IFNAME NAME COUNT [HOPLIMIT]  sendMsg COUNT messages "m<i>" (20 ms apart)
 *   node host.js ssm-send IFNAME NAME COUNT [MARKER]  sendMsg on the SSM channel NAME, then one
 *                                                   message on the any-source channel MARKER
 *   node host.js ssm-recv IFNAME NAME SOURCE COUNT TIMEOUT_MS [MARKER]   stops after COUNT
 *                                                   messages, TIMEOUT_MS idle, or MARKER's message
 */
import { Context, type Socket, type Channel, type ReceivedMessage } from '../../src/librecast/index.js';

const text = (b: Uint8Array): string => new TextDecoder().decode(b);
const bytes = (s: string): Uint8Array => new TextEncoder().encode(s);
const out = (o: unknown): void => {
  process.stdout.write(JSON.stringify(o, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v)) + '\n');
};

/**
 * Messages from `it` until every marker payload was seen (markers included). Datagrams of one
 * channel arrive in order (one kernel socket each); across channels there is no order, so each
 * joined channel needs its own marker.
 */
async function until(it: AsyncIterator<ReceivedMessage>, ...markers: string[]): Promise<Array<{ group: string; payload: string; seq: bigint }>> {
  const got: Array<{ group: string; payload: string; seq: bigint }> = [];
  const left = new Set(markers);
  while (left.size > 0) {
    const r = await it.next();
    if (r.done) throw new Error(`iterator ended before markers ${[...left].join(', ')}`);
    got.push({ group: r.value.channel.group, payload: text(r.value.payload), seq: r.value.seq });
    left.delete(text(r.value.payload));
  }
  return got;
}

async function local(ifname: string): Promise<void> {
  const ctx = new Context();
  const a = await ctx.socket({ interface: ifname, loopback: true, recvBufferSize: 1 << 20 });
  const [x, y, z] = ['local/x', 'local/y', 'local/z'].map((n) => ctx.channel(n)) as [Channel, Channel, Channel];
  out({ event: 'channels', x: x.group, y: y.group, z: z.group });
  await a.join(x);
  await a.join(y);
  z.bind(a);
  out({ event: 'joined', channels: a.channels.map((c) => c.group), recvBufferSize: a.recvBufferSize });
  const it = a.messages();

  // 1. join/part: only joined channels arrive, each tagged with its channel
  await x.sendMsg(bytes('x1'));
  await y.sendMsg(bytes('y1'));
  await z.sendMsg(bytes('z1'));
  await x.sendMsg(bytes('end1'));
  await y.sendMsg(bytes('end1y'));
  out({ event: 'phase1', got: await until(it, 'end1', 'end1y') });
  await a.part(y);
  await y.sendMsg(bytes('y2'));
  await x.sendMsg(bytes('x2'));
  await x.sendMsg(bytes('end2'));
  out({ event: 'phase2', got: await until(it, 'end2'), channels: a.channels.map((c) => c.group) });

  // 2. loopback off (the default, as Librecast): b's datagrams do not reach a on this host
  const b = await ctx.socket({ interface: ifname });
  const xb = ctx.channel('local/x').bind(b);
  await xb.sendMsg(bytes('from-b'));
  await x.sendMsg(bytes('end3'));
  out({ event: 'loopback', got: await until(it, 'end3'), bLoopback: b.loopback });

  // 3. Lamport clock: a message with seq 100 from another context moves x's clock past it
  const ctx2 = new Context();
  const c2 = await ctx2.socket({ interface: ifname, loopback: true });
  const x2 = ctx2.channel('local/x').bind(c2);
  x2.clock.observe(98n); // -> 99, so the next message carries seq 100
  const before = x.clock.value;
  await x2.sendMsg(bytes('seq100'));
  const seen = await until(it, 'seq100');
  const after = x.clock.value;
  const next = await x.sendMsg(bytes('end4'));
  await until(it, 'end4');
  out({ event: 'clock', before, seen: seen.at(-1)?.seq, after, nextSent: next.seq });
  await ctx2.close();

  // 4. datagrams that are not Librecast messages are dropped and counted, never thrown
  const header = (op: number, len: bigint, payload: number): Uint8Array => {
    const d = new Uint8Array(33 + payload);
    d[24] = op;
    new DataView(d.buffer).setBigUint64(25, len);
    return d;
  };
  await x.send(new Uint8Array(10)); // short
  await x.send(header(9, 0n, 0)); // opcode
  await x.send(header(0, 50n, 10)); // length
  await x.send(header(0, 1n, 5)); // trailing
  await x.sendMsg(bytes('end5'));
  out({ event: 'drops', got: await until(it, 'end5'), decodeDrops: a.stats.decodeDrops });

  // 5. messages(signal): aborting ends that iteration, the socket stays open
  const ac = new AbortController();
  const pending = a.messages(ac.signal).next();
  setImmediate(() => ac.abort());
  const r = await pending;
  out({ event: 'iterAbort', done: r.done, socketClosed: a.closed });

  // 6. a socket opened with a signal closes when it aborts; its iterators end
  const ac2 = new AbortController();
  const s: Socket = await ctx.socket({ interface: ifname, signal: ac2.signal });
  await s.join(x);
  const pending2 = s.messages().next();
  ac2.abort();
  const r2 = await pending2;
  let joinAfter = 'no error';
  try {
    await s.join(y);
  } catch (err) {
    joinAfter = (err as { code?: string }).code ?? String(err);
  }
  out({ event: 'socketAbort', done: r2.done, closed: s.closed, joinAfter });

  // 7. a full queue drops new datagrams and counts them; joining x on q leaves x bound to a
  const q = await ctx.socket({ interface: ifname, queueLimit: 3 });
  await q.join(x);
  const stillA = x.socket === a;
  for (let i = 1; i <= 8; i++) await x.sendMsg(bytes(`q${i}`));
  // wait (bounded) for the kernel to hand all 8 over before reading
  for (let i = 0; i < 2000 && q.stats.received < 8; i++) await new Promise((r) => setTimeout(r, 5));
  const qi = q.messages();
  const queued: string[] = [];
  for (let i = 0; i < 3; i++) {
    const r = await qi.next();
    if (!r.done) queued.push(text(r.value.payload));
  }
  out({ event: 'queue', queued, received: q.stats.received, queueDrops: q.stats.queueDrops, stillA });

  // 8. close: lc_ctx_free closes every socket; the process must then exit on its own
  await ctx.close();
  let channelAfter = 'no error';
  try {
    ctx.channel('x');
  } catch (err) {
    channelAfter = (err as { code?: string }).code ?? String(err);
  }
  out({ event: 'closed', sockets: ctx.sockets.length, aClosed: a.closed, bClosed: b.closed, channelAfter });
  const end = await it.next();
  out({ event: 'iterAfterClose', done: end.done });
}

async function send(ifname: string, name: string, count: number, hopLimit?: number, ssm = false, marker?: string): Promise<void> {
  const ctx = new Context();
  const sock = await ctx.socket({ interface: ifname, ...(hopLimit !== undefined && { hopLimit }) });
  const chan = ctx.channel(name, { ssm }).bind(sock);
  for (let i = 1; i <= count; i++) {
    await chan.sendMsg(bytes(`m${i}`));
    out({ event: 'sent', i, group: chan.group });
    await new Promise((r) => setTimeout(r, 20));
  }
  if (marker !== undefined) {
    await new Promise((r) => setTimeout(r, 100));
    await ctx.channel(marker).bind(sock).sendMsg(bytes('marker'));
  }
  await ctx.close();
}

async function ssmRecv(ifname: string, name: string, source: string, count: number, timeoutMs: number, marker?: string): Promise<void> {
  const ctx = new Context();
  const sock = await ctx.socket({ interface: ifname });
  const chan = ctx.channel(name, { ssm: true });
  let missingSource = 'no error';
  try {
    await sock.join(chan);
  } catch (err) {
    missingSource = (err as { code?: string }).code ?? String(err);
  }
  await sock.join(chan, { source });
  const markerChan = marker === undefined ? undefined : ctx.channel(marker);
  if (markerChan) await sock.join(markerChan);
  out({ event: 'ready', group: chan.group, missingSource });
  const ac = new AbortController();
  let timer = setTimeout(() => ac.abort(), timeoutMs);
  let got = 0;
  for await (const m of sock.messages(ac.signal)) {
    clearTimeout(timer);
    timer = setTimeout(() => ac.abort(), timeoutMs);
    if (m.channel === markerChan) {
      out({ event: 'marker', from: m.from });
      break;
    }
    out({ event: 'msg', payload: text(m.payload), from: m.from, group: m.channel.group });
    if (++got >= count) break;
  }
  clearTimeout(timer);
  out({ event: 'done', received: got });
  await ctx.close();
}

async function main(argv: string[]): Promise<void> {
  const [cmd, ifname = '', ...rest] = argv;
  if (cmd === 'local') return local(ifname);
  if (cmd === 'send') return send(ifname, rest[0] ?? '', Number(rest[1]), rest[2] === undefined ? undefined : Number(rest[2]));
  if (cmd === 'ssm-send') return send(ifname, rest[0] ?? '', Number(rest[1]), undefined, true, rest[2]);
  if (cmd === 'ssm-recv') return ssmRecv(ifname, rest[0] ?? '', rest[1] ?? '', Number(rest[2]), Number(rest[3]), rest[4]);
  throw new Error(`unknown command ${String(cmd)}`);
}

main(process.argv.slice(2)).catch((err: unknown) => {
  process.stderr.write(`host: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exitCode = 1;
});
