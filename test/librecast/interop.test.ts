import { after, before } from 'node:test';
import assert from 'node:assert/strict';
import type { Lab } from '../../src/lab/index.js';
import { labTest } from '../../src/lab/testing.js';
import { Channel } from '../../src/channel/index.js';
import { compileProbes, LC_NODE, type Probes } from '../support/cprobes.js';
import { JsonLines, type Line } from '../support/jsonlines.js';
import { test } from 'node:test';

// Interop with the real Librecast 0.5.1 C library over real IPv6 multicast in the lab:
// the C programs (test/librecast/c) run in one lab host, our src/librecast (test/librecast/lc-node.ts)
// in another; both use the same channel name and never share code. Each receiver prints what it
// decoded and the assertions compare that with what the other side says it sent.

const COUNT = 12;
let probes: Probes | undefined;

before(() => {
  probes = compileProbes(['lc-send', 'lc-recv', 'lc-listen']);
});
after(() => {
  if (probes?.ok) probes.cleanup();
});

const hosts = ['clib', 'ours'];
const hex = (s: string): string => Buffer.from(s).toString('hex');
const nodeArgs = (...args: string[]): string[] => [LC_NODE, ...args];

function bin(name: string): string {
  if (!probes?.ok) throw new Error('unreachable: probes not compiled');
  return probes.bin[name] ?? '';
}

/** Skip (with the reason printed by node:test) when the C side cannot be built here. */
function interop(name: string, fn: (lab: Lab) => Promise<void>): void {
  const pre = compileProbes([]);
  if (!pre.ok) {
    test(name, { skip: pre.reason }, () => {});
    return;
  }
  pre.cleanup();
  labTest(name, { hosts, timeout: 60_000 }, async (lab) => {
    if (!probes?.ok) throw new Error(`C probes did not compile: ${probes && !probes.ok ? probes.reason : 'not built'}`);
    await fn(lab);
  });
}

async function run(lab: Lab, recv: { host: string; cmd: string; args: string[] }, send: { host: string; cmd: string; args: string[] }): Promise<{ received: Line[]; sent: Line[] }> {
  const r = new JsonLines(lab.spawn(recv.host, recv.cmd, recv.args));
  await r.waitFor('ready');
  const s = new JsonLines(lab.spawn(send.host, send.cmd, send.args));
  const sent = await s.exited;
  assert.equal(sent.code, 0, `sender failed: ${sent.stderr}`);
  const got = await r.exited;
  assert.equal(got.code, 0, `receiver failed: ${got.stderr}`);
  return { received: got.lines.filter((l) => l.event === 'msg' || l.event === 'raw'), sent: sent.lines.filter((l) => l.event === 'sent') };
}

const channelName = (tag: string): string => `interop/${tag}/${process.pid}`;

interop('lc_msg_send (C) -> Socket.messages() (ours): header fields and payload', async (lab) => {
  const name = channelName('c2ts-msg');
  const { received, sent } = await run(
    lab,
    { host: 'ours', cmd: process.execPath, args: nodeArgs('recv', lab.host('ours').ifname, name, 'msg', String(COUNT), '15000') },
    { host: 'clib', cmd: bin('lc-send'), args: [lab.host('clib').ifname, name, 'msg', String(COUNT)] },
  );
  assert.equal(sent.length, COUNT);
  assert.equal(sent[0]?.group, new Channel(name).group, 'C and ours derive the same group');
  assert.equal(received.length, COUNT);
  received.forEach((m, k) => {
    const i = k + 1;
    assert.equal(m.group, new Channel(name).group);
    assert.equal(m.seq, String(i), 'seq is the sender channel clock, 1, 2, ...');
    assert.equal(m.op, i % 7);
    assert.equal(m.timestamp, String(1_000_000_000_000_000_000n + BigInt(i)));
    assert.equal(m.data, hex(`lc-msg-${i}`));
    assert.equal(m.bytes, 33 + `lc-msg-${i}`.length);
    assert.equal(sent[k]?.bytes, m.bytes, 'lc_msg_send return value = datagram size');
  });
  assert.equal(new Set(received.map((m) => m.rnd)).size, COUNT, 'rnd is random per message');
});

interop('lc_channel_send (C, raw) -> Socket.datagrams() (ours)', async (lab) => {
  const name = channelName('c2ts-raw');
  const { received } = await run(
    lab,
    { host: 'ours', cmd: process.execPath, args: nodeArgs('recv', lab.host('ours').ifname, name, 'raw', String(COUNT), '15000') },
    { host: 'clib', cmd: bin('lc-send'), args: [lab.host('clib').ifname, name, 'raw', String(COUNT)] },
  );
  assert.deepEqual(received.map((m) => m.data), Array.from({ length: COUNT }, (_, k) => hex(`lc-raw-${k + 1}`)));
});

interop('Channel.sendMsg (ours) -> lc_msg_recv (C)', async (lab) => {
  const name = channelName('ts2c-msg');
  const { received, sent } = await run(
    lab,
    { host: 'clib', cmd: bin('lc-recv'), args: [lab.host('clib').ifname, name, 'msg', String(COUNT), '15000'] },
    { host: 'ours', cmd: process.execPath, args: nodeArgs('send', lab.host('ours').ifname, name, 'msg', String(COUNT)) },
  );
  assert.equal(sent.length, COUNT);
  assert.equal(received.length, COUNT);
  received.forEach((m, k) => {
    const i = k + 1;
    const payload = `ts-msg-${i}`;
    assert.equal(m.seq, String(i));
    assert.equal(m.op, i % 7);
    assert.equal(m.timestamp, String(2_000_000_000_000_000_000n + BigInt(i)));
    assert.equal(m.rnd, String((0x0102030405060708n * BigInt(i)) & 0xffff_ffff_ffff_ffffn));
    assert.equal(m.len, String(payload.length));
    assert.equal(m.data, hex(payload));
    assert.equal(m.bytes, 33 + payload.length);
  });
});

interop('Channel.send (ours, raw) -> lc_socket_recv (C), on a sideband channel', async (lab) => {
  const name = channelName('ts2c-raw');
  const band = '1234567890123';
  const { received, sent } = await run(
    lab,
    { host: 'clib', cmd: bin('lc-recv'), args: [lab.host('clib').ifname, name, 'raw', String(COUNT), '15000', band] },
    { host: 'ours', cmd: process.execPath, args: nodeArgs('send', lab.host('ours').ifname, name, 'raw', String(COUNT), band) },
  );
  assert.equal(sent[0]?.group, new Channel(name).sideband(BigInt(band)).group);
  assert.deepEqual(received.map((m) => m.data), Array.from({ length: COUNT }, (_, k) => hex(`ts-raw-${k + 1}`)));
});

interop('lc_msg_send (C) on a sideband -> ours joined to the same sideband', async (lab) => {
  const name = channelName('c2ts-side');
  const band = '42';
  const { received, sent } = await run(
    lab,
    { host: 'ours', cmd: process.execPath, args: nodeArgs('recv', lab.host('ours').ifname, name, 'msg', String(COUNT), '15000', band) },
    { host: 'clib', cmd: bin('lc-send'), args: [lab.host('clib').ifname, name, 'msg', String(COUNT), band] },
  );
  assert.equal(sent[0]?.group, new Channel(name).sideband(42n).group);
  assert.equal(received.length, COUNT);
  assert.deepEqual(received.map((m) => m.data), Array.from({ length: COUNT }, (_, k) => hex(`lc-msg-${k + 1}`)));
});

interop('PING (ours) -> Librecast listener answers PONG (C library handler) -> ours', async (lab) => {
  const name = channelName('ping');
  const n = 3;
  const c = new JsonLines(lab.spawn('clib', bin('lc-listen'), [lab.host('clib').ifname, name, String(n), '15000']));
  await c.waitFor('ready');
  const ours = new JsonLines(lab.spawn('ours', process.execPath, nodeArgs('ping', lab.host('ours').ifname, name, 'msg', String(n), '15000')));
  const o = await ours.exited;
  assert.equal(o.code, 0, o.stderr);
  const cl = await c.exited;
  assert.equal(cl.code, 0, cl.stderr);
  // the C listener saw our PINGs; its callback runs after lc_op_ping_handler rewrote the
  // message's opcode to PONG and sent it back, so it reports op 2 for each
  const pings = cl.lines.filter((l) => l.event === 'msg');
  assert.deepEqual(pings.map((l) => l.op), [2, 2, 2]);
  assert.ok(pings.every((l) => l.src === lab.host('ours').address));
  const sent = o.lines.filter((l) => l.event === 'sent');
  assert.deepEqual(pings.map((l) => l.seq), sent.map((l) => l.seq));
  const pongs = o.lines.filter((l) => l.event === 'msg');
  assert.equal(pongs.length, n);
  pongs.forEach((p, k) => {
    const i = k + 1;
    assert.equal(p.op, 2, 'PONG');
    assert.equal(p.from, lab.host('clib').address);
    assert.equal(p.data, hex(`ping-${i}`), 'payload echoed');
    assert.equal(p.timestamp, String(3_000_000_000_000_000_000n + BigInt(i)), 'timestamp echoed (lc_msg_send keeps a non-zero one)');
    // Librecast: on receipt chan->seq = seq + 1 (its clock was behind), then lc_msg_send stamps ++chan->seq
    assert.equal(p.seq, String(BigInt(String(sent[k]?.seq)) + 2n));
    assert.equal(p.clockAfter, String(BigInt(String(p.seq)) + 1n));
  });
});

interop('every opcode we send reaches Librecast\'s listener (lc_socket_listen) with its seq', async (lab) => {
  const name = channelName('listen-ops');
  // i = 1..7 -> opcode i % 7: PING, PONG, GET, SET, DEL, RET, DATA
  const c = new JsonLines(lab.spawn('clib', bin('lc-listen'), [lab.host('clib').ifname, name, '9', '15000']));
  await c.waitFor('ready');
  const ours = new JsonLines(lab.spawn('ours', process.execPath, nodeArgs('send', lab.host('ours').ifname, name, 'msg', '7')));
  assert.equal((await ours.exited).code, 0, ours.stderr);
  const cl = await c.exited;
  assert.equal(cl.code, 0, cl.stderr);
  const seen = cl.lines.filter((l) => l.event === 'msg').map((l) => `${String(l.seq)}:${String(l.op)}`);
  // Librecast 0.5.1 quirks seen here: the PING is reported after its handler rewrote it to PONG
  // (and answered it); DATA and PONG reach the callback twice (opcode handler + process_msg).
  assert.deepEqual(seen, ['1:2', '2:2', '2:2', '3:3', '4:4', '5:5', '6:6', '7:0', '7:0']);
});
