// Real IPv6 multicast between processes in lab hosts (network namespaces).
import assert from 'node:assert/strict';
import { labTest, startReceiver, runSender, sendMarker } from '../../src/lab/testing.js';

const G = 'ff1e::4242:1';

labTest('multicast from one sender reaches every joined host, through the async iterator', { hosts: ['sender', 'dev1', 'dev2', 'idle'] }, async (lab) => {
  const r1 = startReceiver(lab, 'dev1', ['--group', G, '--expect', '500', '--timeout-ms', '10000']);
  const r2 = startReceiver(lab, 'dev2', ['--group', G, '--expect', '500', '--timeout-ms', '10000', '--fast']);
  // 'idle' joined another group: it must see nothing of G, only the end marker sent to its group
  const r3 = startReceiver(lab, 'idle', ['--group', 'ff1e::4242:2', '--until-id', '99', '--timeout-ms', '15000']);
  await Promise.all([r1.ready, r2.ready, r3.ready]);
  const sent = await runSender(lab, 'sender', ['--group', G, '--count', '500', '--rate', '5000', '--size', '1200']);
  assert.equal(sent.sent, 500);
  assert.equal(sent.sendErrors, 0);
  await sendMarker(lab, 'sender', 'ff1e::4242:2');
  const [a, b, c] = await Promise.all([r1.done, r2.done, r3.done]);
  for (const r of [a, b]) {
    assert.equal(r.unique, 500);
    assert.equal(r.duplicates, 0);
    assert.equal(r.bytes, 500 * 1200);
    assert.deepEqual(r.sources, [lab.host('sender').address]);
  }
  assert.equal(c.received, 0);
  assert.deepEqual(c.perId, { 99: 1 });
  const snmp = await lab.snmp6('dev1');
  assert.equal(snmp.Udp6RcvbufErrors, 0);
  assert.ok((snmp.Udp6InDatagrams ?? 0) >= 500);
});

labTest('a socket bound to a group only sees that group, a [::] socket sees every group joined on its port', { hosts: ['sender', 'dev'] }, async (lab) => {
  const G2 = 'ff1e::4242:2';
  const bound = startReceiver(lab, 'dev', ['--group', G, '--bind-group', '--until-id', '99', '--timeout-ms', '15000']);
  const any = startReceiver(lab, 'dev', ['--group', G2, '--until-id', '99', '--timeout-ms', '15000']);
  await Promise.all([bound.ready, any.ready]);
  await runSender(lab, 'sender', ['--group', G, '--count', '200', '--rate', '4000', '--id', '1']);
  await runSender(lab, 'sender', ['--group', G2, '--count', '300', '--rate', '4000', '--id', '2']);
  await sendMarker(lab, 'sender', G); // reaches both (bound: its group; any: [::]:4242)
  const [b, a] = await Promise.all([bound.done, any.done]);
  assert.deepEqual(b.perId, { 1: 200, 99: 1 });
  // as docs/lab.md ("The socket layer") documents: [::]:4242 also receives G, joined by the other socket
  assert.deepEqual(a.perId, { 1: 200, 2: 300, 99: 1 });
});

labTest('source-specific join (ff3e::/32) accepts only the chosen source', { hosts: ['good', 'bad', 'dev'] }, async (lab) => {
  const SSM = 'ff3e::4242:3';
  const r = startReceiver(lab, 'dev', ['--group', SSM, '--source', lab.host('good').address, '--until-id', '99', '--timeout-ms', '15000']);
  await r.ready;
  await Promise.all([
    runSender(lab, 'good', ['--group', SSM, '--count', '300', '--rate', '3000', '--id', '7']),
    runSender(lab, 'bad', ['--group', SSM, '--count', '300', '--rate', '3000', '--id', '8']),
  ]);
  await sendMarker(lab, 'good', SSM); // after both senders finished
  const res = await r.done;
  assert.deepEqual(res.perId, { 7: 300, 99: 1 });
  assert.deepEqual(res.sources, [lab.host('good').address]);
});

labTest('a slow iterator consumer overflows the bounded queue: drops are counted, memory stays bounded', { hosts: ['sender', 'dev'] }, async (lab) => {
  // the consumer starts only once all 1000 datagrams reached the socket
  const r = startReceiver(lab, 'dev', ['--group', G, '--queue-limit', '100', '--stall-until-received', '1000', '--expect', '100', '--timeout-ms', '15000']);
  await r.ready;
  await runSender(lab, 'sender', ['--group', G, '--count', '1000', '--rate', '5000']);
  const res = await r.done;
  assert.equal(res.kernelReceived, 1000);
  assert.equal(res.unique, 100);
  assert.equal(res.queueDrops, 900);
});

labTest('trySend back-pressure: a fast burst arrives complete at a receiver with an 8 MiB buffer', { hosts: ['sender', 'dev'] }, async (lab) => {
  const r = startReceiver(lab, 'dev', ['--group', G, '--expect', '3000', '--fast', '--timeout-ms', '10000']);
  await r.ready;
  const s = await runSender(lab, 'sender', ['--group', G, '--count', '3000', '--size', '1200']);
  assert.equal(s.sent, 3000);
  const res = await r.done;
  // 3000 x 1200 B = 3.6 MB fits the receive buffer even if the receiver never ran meanwhile
  assert.equal(res.unique, 3000);
});

labTest('a full kernel send buffer back-pressures trySend; nothing is lost or corrupted', { hosts: ['sender', 'dev'] }, async (lab) => {
  // Shape the sender's own egress to 8 Mbit/s with a queue far larger than its 8 KiB send
  // buffer: datagrams waiting in the qdisc stay charged to the socket, so sendmsg hits EAGAIN,
  // libuv queues, and trySend must refuse until drain(). The probe rewrites its one buffer
  // right after every trySend: any datagram sent from caller memory would arrive as a duplicate seq.
  const s = lab.host('sender');
  await lab.exec(s, 'tc', ['qdisc', 'add', 'dev', s.ifname, 'root', 'tbf', 'rate', '8mbit', 'burst', '16384', 'limit', '4000000']);
  const r = startReceiver(lab, 'dev', ['--group', G, '--expect', '600', '--timeout-ms', '15000']);
  await r.ready;
  const sent = await runSender(lab, 'sender', ['--group', G, '--count', '600', '--size', '1200', '--sndbuf', '8192']);
  assert.equal(sent.sent, 600);
  assert.ok(sent.refused > 0, 'the send buffer filled at least once');
  assert.equal(sent.sendErrors, 0);
  const res = await r.done;
  assert.equal(res.unique, 600);
  assert.equal(res.duplicates, 0);
});

labTest('a connected sender reaches every receiver; it can only send to its group', { hosts: ['sender', 'dev'] }, async (lab) => {
  const r = startReceiver(lab, 'dev', ['--group', G, '--expect', '2000', '--timeout-ms', '10000', '--fast']);
  await r.ready;
  const sent = await runSender(lab, 'sender', ['--group', G, '--count', '2000', '--connect']);
  assert.equal(sent.sent, 2000);
  const res = await r.done;
  assert.equal(res.unique, 2000);
  assert.deepEqual(res.sources, [lab.host('sender').address]);
  // the usage checks, run inside the sender host
  const s = lab.host('sender');
  const script = [
    "const { McastSocket } = await import(process.argv[1]);",
    `const sock = await McastSocket.open({ interface: '${s.ifname}', port: 0 });`,
    `await sock.connect('${G}', 4242);`,
    "const out = { to: sock.connectedTo };",
    "try { sock.trySend(new Uint8Array(4), 'ff1e::99', 4242); out.other = 'sent'; } catch (e) { out.other = e.code; }",
    `try { await sock.connect('ff1e::99', 4242); out.reconnect = 'ok'; } catch (e) { out.reconnect = e.code; }`,
    `out.same = sock.trySend(new Uint8Array(4), '${G}');`,
    "await sock.close();",
    "console.log(JSON.stringify(out));",
  ].join('\n');
  const netIndex = new URL('../../src/net/index.js', import.meta.url).href;
  const o = await lab.exec('sender', process.execPath, ['--input-type=module', '-e', script, netIndex]);
  assert.deepEqual(JSON.parse(o.stdout), { to: { group: G, port: 4242 }, other: 'ERR_SOCKET_CONNECTED', reconnect: 'ERR_SOCKET_CONNECTED', same: true });
});

labTest('hop limit 0 keeps datagrams on the host, loopback delivers them to its own receivers', { hosts: ['sender', 'dev'] }, async (lab) => {
  const run = async (args: string[]): Promise<[number, number]> => {
    const local = startReceiver(lab, 'sender', ['--group', G, '--until-id', '99', '--timeout-ms', '15000']);
    const remote = startReceiver(lab, 'dev', ['--group', G, '--until-id', '99', '--timeout-ms', '15000']);
    await Promise.all([local.ready, remote.ready]);
    await runSender(lab, 'sender', ['--group', G, '--count', '100', '--rate', '2000', ...args]);
    // end markers: looped back to 'sender' and sent on to 'dev'
    await runSender(lab, 'sender', ['--group', G, '--count', '1', '--id', '99', '--loopback']);
    const [l, r] = await Promise.all([local.done, remote.done]);
    assert.equal(l.perId[99], 1);
    assert.equal(r.perId[99], 1);
    return [l.unique, r.unique];
  };
  assert.deepEqual(await run([]), [0, 100], 'defaults: hop limit 255, loopback off (as Librecast)');
  assert.deepEqual(await run(['--loopback']), [100, 100]);
  assert.deepEqual(await run(['--hop-limit', '0', '--loopback']), [100, 0]);
  assert.deepEqual(await run(['--hop-limit', '1']), [0, 100]);
});

labTest('leave() drops the membership (kernel igmp6 table) and delivery stops', { hosts: ['dev'] }, async (lab) => {
  // One process in one host, looped-back sends. Socket A joins G then leaves; socket D on
  // another group G2 receives an end marker sent after the post-leave datagrams (same
  // sender: the loopback path delivers in order); one setImmediate later every datagram of
  // that poll batch has been handled. /proc/net/igmp6 shows the kernel's view directly.
  const h = lab.host('dev');
  const G2 = 'ff1e::4242:9';
  const groupHex = (g: string): string => {
    const [head = '', tail = ''] = g.split('::');
    const hs = head.split(':').filter(Boolean);
    const ts = tail.split(':').filter(Boolean);
    const all = [...hs, ...Array<string>(8 - hs.length - ts.length).fill('0'), ...ts];
    return all.map((x) => x.padStart(4, '0')).join('');
  };
  const script = `const { McastSocket } = await import(process.argv[1]);
const fs = await import('node:fs');
const joined = () => fs.readFileSync('/proc/net/igmp6', 'utf8').split('\\n').some((l) => l.includes('${h.ifname}') && l.includes('${groupHex(G)}'));
const a = await McastSocket.open({ interface: '${h.ifname}', port: 4243, bindAddress: '${G}' });
const d = await McastSocket.open({ interface: '${h.ifname}', port: 4243, bindAddress: '${G2}' });
const tx = await McastSocket.open({ interface: '${h.ifname}', port: 0, loopback: true });
const out = { before: joined() };
a.join('${G}'); d.join('${G2}');
out.afterJoin = joined();
const marker = async () => {
  await tx.send(new Uint8Array([9]), '${G2}', 4243);
  await d[Symbol.asyncIterator]().next();
  await new Promise((r) => setImmediate(r));
};
for (let i = 0; i < 10; i++) await tx.send(new Uint8Array([1, i]), '${G}', 4243);
await marker();
out.aBefore = a.stats.received;
a.leave('${G}');
out.afterLeave = joined();
for (let i = 0; i < 10; i++) await tx.send(new Uint8Array([2, i]), '${G}', 4243);
await marker();
out.aAfter = a.stats.received;
await Promise.all([a.close(), d.close(), tx.close()]);
console.log(JSON.stringify(out));`;
  const netIndex = new URL('../../src/net/index.js', import.meta.url).href;
  const o = await lab.exec('dev', process.execPath, ['--input-type=module', '-e', script, netIndex]);
  assert.deepEqual(JSON.parse(o.stdout), { before: false, afterJoin: true, aBefore: 10, afterLeave: false, aAfter: 10 });
});

labTest('link-scope groups (ff12::/16) work, also bound to the group (the bind needs the zone)', { hosts: ['sender', 'dev'] }, async (lab) => {
  const LL = 'ff12::4242:5';
  const bound = startReceiver(lab, 'dev', ['--group', LL, '--bind-group', '--expect', '100', '--timeout-ms', '15000']);
  const any = startReceiver(lab, 'dev', ['--group', LL, '--port', '4242', '--expect', '100', '--timeout-ms', '15000']);
  await Promise.all([bound.ready, any.ready]);
  await runSender(lab, 'sender', ['--group', LL, '--count', '100', '--rate', '2000']);
  const [b, a] = await Promise.all([bound.done, any.done]);
  assert.equal(b.unique, 100);
  assert.equal(a.unique, 100);
  // link-scope traffic is sent from the link-local address
  assert.equal(b.sources.length, 1);
  assert.match(b.sources[0]!, /^fe80:/);
});
