// UDP GSO on the send path (src/net/gso.ts, src/net/native/udp_batch.c): the run rule, the native
// addon's own argument checks, and real multicast through the lab, where receivers must see
// ordinary datagrams, in order, and the lab's loss must hit single datagrams, not whole runs.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, openSync, closeSync } from 'node:fs';
import { constants } from 'node:os';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import { segmentRun, GSO_MAX_SEGMENTS, GSO_MAX_BYTES } from '../../src/net/gso.js';
import { nativeFor } from '../../src/net/native.js';
import { labTest, startReceiver, runSender, sendMarker } from '../../src/lab/testing.js';

const G = 'ff1e::4242:77';
const sizes = (...n: number[]): Uint8Array[] => n.map((k) => new Uint8Array(k));

test('segmentRun: equal sizes, one shorter datagram ends a run, a longer one starts the next', () => {
  assert.equal(segmentRun(sizes(100, 100, 100), 0, 3), 3);
  assert.equal(segmentRun(sizes(100, 100, 40, 100), 0, 4), 3);
  assert.equal(segmentRun(sizes(100, 120, 100), 0, 3), 1);
  assert.equal(segmentRun(sizes(100, 100, 100, 100), 1, 3), 2);
  assert.equal(segmentRun(sizes(100, 0, 100), 0, 3), 1);
  assert.equal(segmentRun(sizes(...new Array<number>(100).fill(500)), 0, 100), GSO_MAX_SEGMENTS);
  // 1232-byte datagrams: the byte limit (65,000) comes first, at 52
  assert.equal(segmentRun(sizes(...new Array<number>(64).fill(1232)), 0, 64), Math.floor(GSO_MAX_BYTES / 1232));
});

// The addon is optional for users, but wherever a C compiler and Node's headers exist (CI
// installs gcc), `npm run build` must have built it: its absence there is a build defect.
const headers = [join(dirname(process.execPath), '..', 'include', 'node'), '/usr/include/node'].some((d) => existsSync(join(d, 'node_api.h')));
const compiler = ['cc', 'gcc'].some((c) => spawnSync(c, ['--version'], { stdio: 'ignore' }).status === 0);
const buildable = process.platform === 'linux' && headers && compiler && process.env.IOTUPD_GSO !== '0';

test('the native addon is built and loads wherever it can be built', { skip: buildable ? false : 'no C compiler or node_api.h here (or IOTUPD_GSO=0)' }, () => {
  const { addon, reason } = nativeFor('IOTUPD_GSO');
  assert.ok(addon, reason);
});

test('the native addon refuses bad arguments with exceptions and non-sockets with -ENOTSOCK', { skip: buildable ? false : 'addon not buildable here' }, () => {
  const { addon } = nativeFor('IOTUPD_GSO');
  assert.ok(addon);
  const fd = openSync('/dev/null', 'r');
  try {
    assert.equal(addon.check(fd), -constants.errno.ENOTSOCK);
    assert.equal(addon.sendSegments(fd, sizes(10, 10), 0, 2, 10), -constants.errno.ENOTSOCK);
  } finally {
    closeSync(fd);
  }
  const call = (...a: unknown[]): number => (addon.sendSegments as (...x: unknown[]) => number)(...a);
  assert.throws(() => call(1, 'x', 0, 1, 10), TypeError);
  assert.throws(() => call(1, [new Uint16Array(5)], 0, 1, 10), TypeError);
  assert.throws(() => call(1, sizes(10, 10), 1, 2, 10), RangeError); // past the end
  assert.throws(() => call(1, sizes(10, 12), 0, 2, 10), RangeError); // a segment longer than the size
  assert.throws(() => call(1, sizes(8, 10), 0, 2, 10), RangeError); // a short segment before the last
  assert.throws(() => call(1, sizes(...new Array<number>(65).fill(10)), 0, 65, 10), RangeError);
  assert.throws(() => call(1, sizes(60000, 60000), 0, 2, 60000), RangeError);
  assert.throws(() => addon.check(-1), TypeError);
});

labTest('sendBurst: runs of datagrams leave in one system call each and arrive as ordinary datagrams, in order', { hosts: ['sender', 'dev1', 'dev2'] }, async (lab) => {
  const rx = ['dev1', 'dev2'].map((h) => startReceiver(lab, h, ['--group', G, '--until-id', '99', '--timeout-ms', '20000']));
  await Promise.all(rx.map((r) => r.ready));
  // every 16th datagram is half as long: it ends a run, and its length must survive
  const sent = await runSender(lab, 'sender', ['--group', G, '--connect', '--burst', '40', '--short-every', '16', '--count', '4000', '--size', '1200', '--rate', '20000']);
  await sendMarker(lab, 'sender', G);
  assert.equal(sent.gso, buildable ? 'on' : sent.gso);
  if (buildable) assert.ok(sent.gsoCalls >= 4000 / 16, `gsoCalls ${sent.gsoCalls}`);
  assert.equal(sent.sent, 4000);
  assert.equal(sent.sendErrors, 0);
  const shortBytes = 4000 / 16;
  for (const r of await Promise.all(rx.map((x) => x.done))) {
    assert.equal(r.unique, 4000);
    assert.equal(r.duplicates, 0);
    assert.equal(r.gaps, 0);
    assert.equal(r.bytes, (4000 - shortBytes) * 1200 + shortBytes * 600);
  }
});

labTest('the lab splits GSO packets at the bridge: its loss drops single datagrams, not whole runs', { hosts: ['sender', 'dev'] }, async (lab) => {
  await lab.impair('dev', { lossPercent: 20 });
  const r = startReceiver(lab, 'dev', ['--group', G, '--idle-ms', '1500', '--timeout-ms', '30000']);
  await r.ready;
  const sent = await runSender(lab, 'sender', ['--group', G, '--connect', '--burst', '50', '--count', '10000', '--size', '1200', '--rate', '20000']);
  assert.equal(sent.sent, 10000);
  if (buildable) assert.ok(sent.gsoCalls >= 190, `gsoCalls ${sent.gsoCalls}`);
  const res = await r.done;
  const lost = 10000 - res.unique;
  assert.ok(lost > 1500 && lost < 2500, `lost ${lost} of 10000 at 20 %`);
  // Independent loss of 20 %: runs of lost datagrams average 1 / 0.8 = 1.25 long. If the lab
  // dropped whole GSO packets they would average 50.
  const meanRun = lost / res.gaps;
  assert.ok(meanRun < 1.6, `mean run of lost datagrams ${meanRun.toFixed(2)}`);
});

labTest('a socket whose datagrams exceed the MTU turns GSO off and sends them one by one, fragmented', { hosts: ['sender', 'dev'] }, async (lab) => {
  const r = startReceiver(lab, 'dev', ['--group', G, '--until-id', '99', '--timeout-ms', '20000']);
  await r.ready;
  // 3000-byte datagrams on a 1500-byte MTU: GSO cannot carry them (EMSGSIZE / EINVAL), IPv6 fragmentation can
  const sent = await runSender(lab, 'sender', ['--group', G, '--connect', '--burst', '10', '--count', '200', '--size', '3000', '--rate', '2000']);
  await sendMarker(lab, 'sender', G);
  assert.equal(sent.sent, 200);
  if (buildable) assert.match(sent.gso, /sendmsg with UDP_SEGMENT failed/);
  const res = await r.done;
  assert.equal(res.unique, 200);
  assert.equal(res.bytes, 200 * 3000);
});
