import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { LabError, UsageError } from '../../src/errors.js';
import { Lab, labNamespaces, labSupport, reapStaleLabs, withLab } from '../../src/lab/index.js';
import { labTest, runSender, sendMarker, startReceiver } from '../../src/lab/testing.js';

const support = labSupport();
const skip = support.ok ? false : `network lab unavailable: ${support.reason}`;
const G = 'ff1e::1ab:1';

function namespacesOf(id: string): string[] {
  const r = spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' });
  return r.stdout.split('\n').filter((l) => l.startsWith(`${id}-`) || l.startsWith(`${id}.`));
}

function rootLinksOf(id: string): string[] {
  const r = spawnSync('ip', ['-o', 'link', 'show'], { encoding: 'utf8' });
  return r.stdout.split('\n').filter((l) => l.includes(id));
}

function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return !/^\d+ \(.*\) Z/.test(stat);
  } catch {
    return false;
  }
}

test('create builds one namespace per host plus the bridge; destroy removes everything, idempotently', { skip }, async () => {
  const lab = await Lab.create({ hosts: ['sender', 'dev1', 'dev2'] });
  let destroyed = false;
  try {
    assert.match(lab.id, /^iu[a-z0-9]{5}$/);
    assert.equal(namespacesOf(lab.id).length, 4);
    for (const h of lab.hosts) {
      assert.ok(h.ifname.length <= 15 && h.port.length <= 15);
      assert.notEqual(h.ifname, 'eth0');
      assert.match(h.address, /^fd[0-9a-f]{2}:/);
      // the host sees its own interface with its address, and no other lab interface
      const r = await lab.exec(h.name, 'ip', ['-o', '-6', 'addr', 'show']);
      assert.ok(r.stdout.includes(`${h.ifname}`) && r.stdout.includes(`${h.address}/64`), r.stdout);
      assert.ok(!r.stdout.includes('tentative'), 'addresses must be usable at once (nodad)');
      for (const o of lab.hosts) if (o !== h) assert.ok(!r.stdout.includes(o.ifname));
    }
    assert.deepEqual(rootLinksOf(lab.id), [], 'nothing of the lab lives in the root namespace');
    const br = await lab.exec('sender', 'true').then(() => spawnSync('ip', ['-n', lab.bridgeNetns, '-d', 'link', 'show', lab.bridge], { encoding: 'utf8' }).stdout);
    assert.match(br, /mcast_snooping 0/);
    await lab.destroy();
    destroyed = true;
    await lab.destroy();
    assert.deepEqual(namespacesOf(lab.id), []);
    await assert.rejects(lab.exec('sender', 'true'), LabError);
    assert.throws(() => lab.spawn('sender', 'true'), LabError);
  } finally {
    if (!destroyed) await lab.destroy();
  }
});

test('parallel labs get distinct names and prefixes; a host may be called br or bridge', { skip }, async () => {
  const [a, b] = await Promise.all([Lab.create({ hosts: ['x', 'br', 'bridge'] }), Lab.create({ hosts: ['x'] })]);
  try {
    assert.notEqual(a.id, b.id);
    assert.notEqual(a.prefix, b.prefix);
    assert.notEqual(a.host('x').netns, b.host('x').netns);
  } finally {
    await Promise.all([a.destroy(), b.destroy()]);
  }
  assert.deepEqual([...namespacesOf(a.id), ...namespacesOf(b.id)], []);
});

test('bad host lists are usage errors', async () => {
  await assert.rejects(Lab.create({ hosts: [] }), UsageError);
  await assert.rejects(Lab.create({ hosts: ['a', 'a'] }), UsageError);
  await assert.rejects(Lab.create({ hosts: ['a b'] }), UsageError);
  await assert.rejects(Lab.create({ hosts: ['a;rm'] }), UsageError);
  await assert.rejects(Lab.create({ hosts: ['x'.repeat(33)] }), UsageError);
  await assert.rejects(Lab.create({ hosts: ['a.bridge'] }), UsageError);
});

test('withLab destroys the lab when the body throws', { skip }, async () => {
  let id = '';
  await assert.rejects(
    withLab({ hosts: ['a'] }, async (lab) => {
      id = lab.id;
      throw new Error('boom');
    }),
    /boom/,
  );
  assert.ok(id);
  assert.deepEqual(namespacesOf(id), []);
});

labTest('100 % loss drops everything, {} clears it; 30 % loss drops about 30 %', { hosts: ['sender', 'lossy', 'clean'] }, async (lab) => {
  await lab.impair('lossy', { lossPercent: 100 });
  let r1 = startReceiver(lab, 'lossy', ['--group', G, '--timeout-ms', '30000']);
  const ctl = startReceiver(lab, 'clean', ['--group', G, '--until-id', '99', '--timeout-ms', '30000']);
  await Promise.all([r1.ready, ctl.ready]);
  await runSender(lab, 'sender', ['--group', G, '--count', '200', '--rate', '4000']);
  await sendMarker(lab, 'sender', G);
  assert.equal((await ctl.done).unique, 200, 'the control host got the burst and the marker');
  r1.child.kill('SIGTERM');
  assert.equal((await r1.done).received, 0);

  await lab.impair('lossy', {});
  r1 = startReceiver(lab, 'lossy', ['--group', G, '--expect', '200', '--timeout-ms', '5000']);
  await r1.ready;
  await runSender(lab, 'sender', ['--group', G, '--count', '200', '--rate', '4000']);
  assert.equal((await r1.done).unique, 200);

  const N = 4000;
  await lab.impair('lossy', { lossPercent: 30 });
  r1 = startReceiver(lab, 'lossy', ['--group', G, '--until-id', '99', '--timeout-ms', '20000']);
  const r2 = startReceiver(lab, 'clean', ['--group', G, '--expect', String(N), '--timeout-ms', '20000']);
  await Promise.all([r1.ready, r2.ready]);
  await runSender(lab, 'sender', ['--group', G, '--count', String(N), '--rate', '10000']);
  await sendMarker(lab, 'sender', G, 40); // 0.3^40: some marker gets through
  const [lossy, clean] = await Promise.all([r1.done, r2.done]);
  assert.equal(clean.unique, N, 'the control host loses nothing');
  // binomial(4000, 0.7): mean 2800, sd 29; bounds are +-7 sd
  assert.ok(lossy.unique > 2600 && lossy.unique < 3000, `lossy host got ${lossy.unique} of ${N}`);
  assert.equal(lossy.duplicates, 0);
});

labTest('25 % duplicates: every datagram arrives, about a quarter twice', { hosts: ['sender', 'dup', 'clean'] }, async (lab) => {
  const N = 4000;
  await lab.impair('dup', { duplicatePercent: 25 });
  const r1 = startReceiver(lab, 'dup', ['--group', G, '--until-id', '99', '--timeout-ms', '20000']);
  const r2 = startReceiver(lab, 'clean', ['--group', G, '--expect', String(N), '--timeout-ms', '20000']);
  await Promise.all([r1.ready, r2.ready]);
  await runSender(lab, 'sender', ['--group', G, '--count', String(N), '--rate', '10000']);
  await sendMarker(lab, 'sender', G);
  const [dup, clean] = await Promise.all([r1.done, r2.done]);
  assert.equal(clean.duplicates, 0);
  assert.equal(dup.unique, N);
  // binomial(4000, 0.25): mean 1000, sd 27
  assert.ok(dup.duplicates > 800 && dup.duplicates < 1200, `${dup.duplicates} duplicates of ${N}`);
});

labTest('a 4 Mbit/s rate limit holds the bytes a host receives to the rate', { hosts: ['sender', 'slow', 'clean'] }, async (lab) => {
  const N = 4000; // 4.8 MB offered as fast as the sender can (hundreds of Mbit/s)
  await lab.impair('slow', { rateMbit: 4 });
  const r1 = startReceiver(lab, 'slow', ['--group', G, '--until-id', '99', '--timeout-ms', '20000', '--fast']);
  const r2 = startReceiver(lab, 'clean', ['--group', G, '--expect', String(N), '--timeout-ms', '20000', '--fast']);
  await Promise.all([r1.ready, r2.ready]);
  const sent = await runSender(lab, 'sender', ['--group', G, '--count', String(N), '--size', '1200']);
  await sendMarker(lab, 'sender', G, 20); // queued behind the burst in the tbf FIFO
  const [slow, clean] = await Promise.all([r1.done, r2.done]);
  assert.equal(clean.unique, N);
  assert.ok(slow.unique > 0);
  // what came through is bounded by rate x (the sender's send time + the 50 ms tbf queue)
  // plus the burst; 1.5x slack for timer granularity. Count-based: the window is the sender's own.
  const windowS = sent.elapsedMs / 1000 + 0.05;
  const bound = 1.5 * ((4e6 / 8) * windowS + 16 * 1024 + 64 * 1024);
  assert.ok(slow.bytes < bound, `slow host got ${slow.bytes} B in a ${windowS.toFixed(3)} s window (bound ${Math.round(bound)})`);
  assert.ok(slow.unique < N, 'the rate limit dropped some');
});

labTest('link down cuts a host off, link up brings it back', { hosts: ['sender', 'dev', 'ctl'] }, async (lab) => {
  await lab.link('dev', 'down');
  let r = startReceiver(lab, 'dev', ['--group', G, '--timeout-ms', '30000']);
  const ctl = startReceiver(lab, 'ctl', ['--group', G, '--until-id', '99', '--timeout-ms', '30000']);
  await Promise.all([r.ready, ctl.ready]);
  await runSender(lab, 'sender', ['--group', G, '--count', '200', '--rate', '4000']);
  await sendMarker(lab, 'sender', G);
  assert.equal((await ctl.done).unique, 200);
  r.child.kill('SIGTERM');
  assert.equal((await r.done).received, 0);
  await lab.link('dev', 'up');
  r = startReceiver(lab, 'dev', ['--group', G, '--expect', '200', '--timeout-ms', '8000']);
  await r.ready;
  await runSender(lab, 'sender', ['--group', G, '--count', '200', '--rate', '4000']);
  assert.equal((await r.done).unique, 200);
});

labTest('spawn runs inside the host namespace; destroy kills its children', { hosts: ['a', 'b'] }, async (lab) => {
  const child = lab.spawn('a', 'sleep', ['30'], { stdio: 'ignore' });
  const exited = new Promise((resolve) => child.once('exit', (_c, sig) => resolve(sig)));
  const r = await lab.exec('b', 'cat', ['/sys/class/net/' + lab.host('b').ifname + '/ifindex']);
  assert.match(r.stdout.trim(), /^\d+$/);
  const other = await lab.exec('b', 'cat', ['/sys/class/net/' + lab.host('a').ifname + '/ifindex'], { allowFailure: true });
  assert.notEqual(other.code, 0, "host b must not see host a's interface");
  await lab.destroy();
  assert.equal(await exited, 'SIGKILL');
});

const HOLD = fileURLToPath(new URL('./fixtures/hold-lab.js', import.meta.url));

async function holdAndKill(args: string[], signal: NodeJS.Signals | null): Promise<{ code: number | null; sig: NodeJS.Signals | null; id: string; pid: number }> {
  const child = spawn(process.execPath, [HOLD, ...args], { stdio: ['pipe', 'pipe', 'inherit'] });
  const info = await new Promise<{ id: string; pid: number }>((resolve, reject) => {
    let buf = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      buf += d;
      const i = buf.indexOf('\n');
      if (i >= 0) resolve(JSON.parse(buf.slice(0, i)) as { id: string; pid: number });
    });
    child.once('exit', () => reject(new Error('hold-lab exited before reporting')));
  });
  const exit = new Promise<[number | null, NodeJS.Signals | null]>((resolve) => child.once('exit', (c, s) => resolve([c, s])));
  assert.equal(namespacesOf(info.id).length, 3);
  if (signal) child.kill(signal);
  else child.stdin.write('exit\n');
  const [code, sig] = await exit;
  return { code, sig, ...info };
}

test('SIGINT to a process that built a lab tears the lab down and still ends the process', { skip, timeout: 30000 }, async () => {
  const r = await holdAndKill([], 'SIGINT');
  assert.equal(r.sig, 'SIGINT');
  assert.deepEqual(namespacesOf(r.id), []);
  assert.equal(alive(r.pid), false, 'the child in the lab was killed');
});

test('SIGTERM, an own SIGINT handler and process.exit() also tear down', { skip, timeout: 30000 }, async () => {
  const t = await holdAndKill([], 'SIGTERM');
  assert.equal(t.sig, 'SIGTERM');
  assert.deepEqual(namespacesOf(t.id), []);
  const own = await holdAndKill(['--own-handler'], 'SIGINT');
  assert.equal(own.code, 130);
  assert.deepEqual(namespacesOf(own.id), []);
  const ex = await holdAndKill(['--exit'], null);
  assert.equal(ex.code, 3);
  assert.deepEqual(namespacesOf(ex.id), []);
  assert.equal(alive(ex.pid), false);
});

test('a SIGKILLed lab owner cannot clean up, and the next reapStaleLabs() removes its lab', { skip, timeout: 30000 }, async () => {
  const k = await holdAndKill([], 'SIGKILL');
  assert.equal(k.sig, 'SIGKILL');
  assert.equal(namespacesOf(k.id).length, 3, 'nothing could run on SIGKILL');
  assert.ok(alive(k.pid), "the dead owner's child still runs in the lab");
  assert.ok(reapStaleLabs().includes(k.id));
  assert.deepEqual(namespacesOf(k.id), []);
  for (let i = 0; i < 100 && alive(k.pid); i++) await new Promise((r) => setTimeout(r, 20));
  assert.equal(alive(k.pid), false, 'the reaper killed it');
  // a live lab is never reaped
  await withLab({ hosts: ['a'] }, async (lab) => {
    assert.ok(!reapStaleLabs().includes(lab.id));
    assert.equal(namespacesOf(lab.id).length, 2);
  });
});

test('no lab namespaces of this process remain', { skip }, () => {
  // every test above destroyed its lab; other processes' labs may exist, so check our own ids only
  assert.ok(Array.isArray(labNamespaces()));
  assert.ok(!existsSync('/run/netns/iuprobe'), 'the support probe namespace is deleted');
});
