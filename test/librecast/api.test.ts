import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { Context, LamportClock, Opcode } from '../../src/librecast/index.js';
import { InterfaceError, UsageError } from '../../src/errors.js';
import type { Lab } from '../../src/lab/index.js';
import { labTest } from '../../src/lab/testing.js';
import { compileProbes, type Probes } from '../support/cprobes.js';
import { JsonLines, type Line } from '../support/jsonlines.js';

const HOST = fileURLToPath(new URL('./host.js', import.meta.url));

// ---- no network: validation that fails before any socket exists ----

test('Context: channels, sidebands and validation without sockets', async () => {
  const ctx = new Context();
  const chan = ctx.channel('example.com');
  assert.equal(chan.group, 'ff1e:740d:6e6f:efbd:2c22:da0f:9126:91bf');
  assert.equal(chan.port, 4242);
  assert.equal(chan.sideband(1n).group, 'ff1e:740d:6e6f:efbd:100::');
  assert.equal(chan.sideband(1n).context, ctx);
  assert.equal(ctx.channel('example.com', { scheme: 'sha3', scope: 'site', port: 5000 }).toString(), '[ff15:873e:378f:f6a5:a1f6:fa49:95f1:faf]:5000');
  assert.equal(ctx.channelFromGroup('ff1e::1', 9).toString(), '[ff1e::1]:9');
  // lc_msg_send / lc_channel_send without lc_channel_bind: LC_ERROR_SOCKET_REQUIRED
  await assert.rejects(chan.sendMsg(new Uint8Array(1)), (e: unknown) => e instanceof UsageError && e.code === 'ERR_LC_SOCKET_REQUIRED');
  await assert.rejects(chan.send(new Uint8Array(1)), (e: unknown) => e instanceof UsageError && e.code === 'ERR_LC_SOCKET_REQUIRED');
  assert.equal(chan.clock.value, 0n, 'a failed send does not tick the clock');
  // unknown interface names are errors before any socket is created (never the default interface)
  for (const name of ['nosuchif0', '', '2', 'eth0%x']) {
    await assert.rejects(ctx.socket({ interface: name }), InterfaceError, name);
  }
  await assert.rejects(ctx.socket({ interface: 'lo', queueLimit: 0 }), UsageError);
  await assert.rejects(ctx.socket({ interface: 'lo', signal: AbortSignal.abort() }), (e: unknown) => (e as { code?: string }).code === 'ERR_ABORTED');
  assert.equal(ctx.sockets.length, 0);
  await ctx.close();
  assert.throws(() => ctx.channel('x'), (e: unknown) => (e as { code?: string }).code === 'ERR_CONTEXT_CLOSED');
  await assert.rejects(ctx.socket({ interface: 'lo' }), (e: unknown) => (e as { code?: string }).code === 'ERR_CONTEXT_CLOSED');
});

test('LamportClock follows Librecast net.c (send ++seq; receive max(seq+1, clock+1)), wraps at 2^64', () => {
  const c = new LamportClock();
  assert.equal(c.tick(), 1n);
  c.observe(1n);
  assert.equal(c.value, 2n);
  c.observe(10n);
  assert.equal(c.value, 11n);
  c.observe(3n);
  assert.equal(c.value, 12n);
  assert.equal(c.tick(), 13n);
  const w = new LamportClock(0xffff_ffff_ffff_ffffn);
  assert.equal(w.tick(), 0n);
  assert.equal(Opcode.DATA, 0);
});

// ---- real multicast in the lab ----

function lines(all: Line[], event: string): Line {
  const l = all.find((x) => x.event === event);
  assert.ok(l, `no '${event}' line in ${JSON.stringify(all)}`);
  return l;
}

labTest('Socket on one lab host: join/part, loopback, Lamport clock, decode drops, abort, close', { hosts: ['a'], timeout: 60_000 }, async (lab: Lab) => {
  const child = new JsonLines(lab.spawnNode('a', HOST, ['local', lab.host('a').ifname]));
  const { code, lines: all, stderr } = await child.exited; // the child must exit by itself after ctx.close()
  assert.equal(code, 0, stderr);
  const ch = lines(all, 'channels') as { x: string; y: string; z: string };
  const joined = lines(all, 'joined');
  assert.deepEqual(joined.channels, [ch.x, ch.y]);
  assert.ok(Number(joined.recvBufferSize) >= 1 << 20, `SO_RCVBUF granted ${String(joined.recvBufferSize)} for 1 MiB asked`);
  const payloads = (l: Line): string[] => (l.got as Array<{ payload: string }>).map((m) => m.payload);
  const groups = (l: Line): string[] => (l.got as Array<{ group: string }>).map((m) => m.group);
  // only joined channels arrive, tagged with their channel (y1 on y, z never)
  assert.deepEqual(payloads(lines(all, 'phase1')).sort(), ['end1', 'end1y', 'x1', 'y1']);
  const p1 = lines(all, 'phase1').got as Array<{ payload: string; group: string }>;
  assert.equal(p1.find((m) => m.payload === 'y1')?.group, ch.y);
  assert.equal(p1.find((m) => m.payload === 'x1')?.group, ch.x);
  // after part(y), y's messages stop
  assert.deepEqual(payloads(lines(all, 'phase2')), ['x2', 'end2']);
  assert.deepEqual(lines(all, 'phase2').channels, [ch.x]);
  // loopback off by default: the other socket's message never reached this host's listener
  assert.deepEqual(payloads(lines(all, 'loopback')), ['end3']);
  assert.equal(lines(all, 'loopback').bLoopback, false);
  assert.deepEqual(groups(lines(all, 'loopback')), [ch.x]);
  // Lamport clock: seq 100 received -> clock 101 -> next send 102
  const clock = lines(all, 'clock');
  assert.ok(BigInt(String(clock.before)) < 100n);
  assert.equal(clock.seen, '100');
  assert.equal(clock.after, '101');
  assert.equal(clock.nextSent, '102');
  // malformed datagrams: dropped and counted by fault
  assert.deepEqual(payloads(lines(all, 'drops')), ['end5']);
  assert.deepEqual(lines(all, 'drops').decodeDrops, { short: 1, length: 1, opcode: 1, trailing: 1 });
  assert.deepEqual(lines(all, 'iterAbort'), { event: 'iterAbort', done: true, socketClosed: false });
  assert.deepEqual(lines(all, 'socketAbort'), { event: 'socketAbort', done: true, closed: true, joinAfter: 'ERR_SOCKET_CLOSED' });
  assert.deepEqual(lines(all, 'queue'), { event: 'queue', queued: ['q1', 'q2', 'q3'], received: 8, queueDrops: 5, stillA: true });
  assert.deepEqual(lines(all, 'closed'), { event: 'closed', sockets: 0, aClosed: true, bClosed: true, channelAfter: 'ERR_CONTEXT_CLOSED' });
  assert.deepEqual(lines(all, 'iterAfterClose'), { event: 'iterAfterClose', done: true });
});

labTest('source-specific channel: (S,G) join receives the sender, a wrong source receives nothing', { hosts: ['src', 'rx', 'rx2'], timeout: 60_000 }, async (lab: Lab) => {
  const name = `ssm/${process.pid}`;
  const good = new JsonLines(lab.spawnNode('rx', HOST, ['ssm-recv', lab.host('rx').ifname, name, lab.host('src').address, '5', '15000']));
  // rx2 names rx as the source: the kernel must filter src's datagrams out. It stops at the
  // marker that src sends on an any-source channel after the SSM messages.
  const marker = `ssm-marker/${process.pid}`;
  const bad = new JsonLines(lab.spawnNode('rx2', HOST, ['ssm-recv', lab.host('rx2').ifname, name, lab.host('rx').address, '1', '20000', marker]));
  const ready = await good.waitFor('ready');
  await bad.waitFor('ready');
  assert.match(String(ready.group), /^ff3e::[89a-f][0-9a-f]{3}:[0-9a-f]{1,4}$/);
  assert.equal(ready.missingSource, 'ERR_LC_SSM_SOURCE');
  const sender = new JsonLines(lab.spawnNode('src', HOST, ['ssm-send', lab.host('src').ifname, name, '5', marker]));
  const sent = await sender.exited;
  assert.equal(sent.code, 0, `ssm-send failed: ${sent.stderr}`);
  const g = await good.exited;
  assert.equal(g.code, 0, `ssm-recv (right source) failed: ${g.stderr}`);
  const msgs = g.lines.filter((l) => l.event === 'msg');
  assert.deepEqual(msgs.map((m) => m.payload), ['m1', 'm2', 'm3', 'm4', 'm5']);
  assert.ok(msgs.every((m) => m.from === lab.host('src').address && m.group === ready.group));
  const b = await bad.exited;
  assert.equal(b.code, 0, `ssm-recv (wrong source) failed: ${b.stderr}`);
  assert.equal(lines(b.lines, 'marker').from, lab.host('src').address, 'rx2 heard src (on the marker channel)');
  assert.deepEqual(b.lines.filter((l) => l.event === 'msg'), [], 'but none of its SSM messages');
});

let probes: Probes | undefined;
before(() => {
  probes = compileProbes(['hoplimit-recv', 'lc-send']);
});
after(() => {
  if (probes?.ok) probes.cleanup();
});

labTest('hop limit on the wire: 255 by default like lc_msg_send, or as configured', { hosts: ['tx', 'rx'], timeout: 60_000 }, async (lab: Lab, t) => {
  if (!probes?.ok) {
    t.skip(probes ? probes.reason : 'probes not built');
    return;
  }
  const hop = probes.bin['hoplimit-recv'] ?? '';
  const ctx = new Context();
  const observe = async (name: string, sender: { cmd: string; args: string[] }): Promise<number[]> => {
    const group = ctx.channel(name).group;
    const rx = new JsonLines(lab.spawn('rx', hop, [lab.host('rx').ifname, group, '4242', '3', '15000']));
    await rx.waitFor('ready');
    const tx = new JsonLines(lab.spawn('tx', sender.cmd, sender.args));
    assert.equal((await tx.exited).code, 0, tx.stderr);
    const r = await rx.exited;
    return r.lines.filter((l) => l.event === 'dgram').map((l) => Number(l.hoplimit));
  };
  const tx = lab.host('tx').ifname;
  assert.deepEqual(await observe('hop/default', { cmd: process.execPath, args: [HOST, 'send', tx, 'hop/default', '3'] }), [255, 255, 255]);
  assert.deepEqual(await observe('hop/seven', { cmd: process.execPath, args: [HOST, 'send', tx, 'hop/seven', '3', '7'] }), [7, 7, 7]);
  // and Librecast 0.5.1 itself (DEFAULT_MULTICAST_HOPS)
  assert.deepEqual(await observe('hop/librecast', { cmd: probes.bin['lc-send'] ?? '', args: [tx, 'hop/librecast', 'msg', '3'] }), [255, 255, 255]);
  await ctx.close();
});
