// Socket lifecycle on 'lo' in the current namespace. These tests bind a socket but never
// join a group or send a datagram (no packet leaves any interface).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { UsageError } from '../../src/errors.js';
import { McastSocket, SocketError } from '../../src/net/index.js';

const rmemMax = (): number => Number(readFileSync('/proc/sys/net/core/rmem_max', 'utf8').trim());

// rmem_max is global and a concurrently running lab may raise it: accept the value before or after.
async function granted(want: number): Promise<{ got: number; allowed: number[] }> {
  const before = rmemMax();
  const s = await McastSocket.open({ interface: 'lo', port: 0, recvBufferSize: want });
  const after = rmemMax();
  try {
    assert.equal(s.recvBufferRequested, want);
    return { got: s.recvBufferSize, allowed: [2 * Math.min(want, before), 2 * Math.min(want, after)] };
  } finally {
    await s.close();
  }
}

test('recv buffer: the kernel grants min(request, rmem_max), reported doubled (Linux SO_RCVBUF)', async () => {
  for (const want of [64 * 1024, 256 * 1024, 64 * 1024 * 1024]) {
    const { got, allowed } = await granted(want);
    assert.ok(allowed.includes(got), `asked ${want}, kernel reports ${got}, expected one of ${allowed.join(', ')}`);
  }
});

test('close() ends a pending iterator, is idempotent, and later calls fail cleanly', async () => {
  const s = await McastSocket.open({ interface: 'lo', port: 0 });
  assert.ok(s.port > 0);
  const it = s[Symbol.asyncIterator]();
  const pending = it.next();
  const c1 = s.close();
  const c2 = s.close();
  assert.equal(c1, c2);
  await c1;
  assert.deepEqual(await pending, { value: undefined, done: true });
  assert.deepEqual(await it.next(), { value: undefined, done: true });
  assert.equal(s.closed, true);
  assert.throws(() => s.join('ff1e::1'), (e: unknown) => e instanceof SocketError && e.code === 'ERR_SOCKET_CLOSED');
  assert.equal(s.trySend(new Uint8Array(1), 'ff1e::1'), false);
  await s.drain();
  // for-await over a closed socket ends at once
  let n = 0;
  for await (const _ of s) n++;
  assert.equal(n, 0);
});

test('an AbortSignal closes the socket and ends its iterators', async () => {
  const ac = new AbortController();
  const s = await McastSocket.open({ interface: 'lo', port: 0, signal: ac.signal });
  const pending = s.messages().next();
  ac.abort();
  assert.deepEqual(await pending, { value: undefined, done: true });
  assert.equal(s.closed, true);
  await s.close();
});

test('messages(signal) ends that iterator only; open() with an aborted signal rejects', async () => {
  const s = await McastSocket.open({ interface: 'lo', port: 0 });
  try {
    const ac = new AbortController();
    const it = s.messages(ac.signal);
    const other = s.messages();
    let otherSettled = false;
    const otherPending = other.next().then((r) => {
      otherSettled = true;
      return r;
    });
    const pending = it.next();
    ac.abort();
    assert.deepEqual(await pending, { value: undefined, done: true });
    await new Promise((r) => setImmediate(r));
    assert.equal(otherSettled, false, 'aborting one iterator leaves the others waiting');
    assert.equal(s.closed, false);
    await s.close();
    assert.deepEqual(await otherPending, { value: undefined, done: true });
  } finally {
    await s.close();
  }
  const ac = new AbortController();
  ac.abort();
  await assert.rejects(McastSocket.open({ interface: 'lo', port: 0, signal: ac.signal }), SocketError);
});

test('join/send validate groups and sources before any syscall', async () => {
  const s = await McastSocket.open({ interface: 'lo', port: 0 });
  try {
    assert.throws(() => s.join('2001:db8::1'), UsageError);
    assert.throws(() => s.join('ff1e::1%lo'), UsageError);
    assert.throws(() => s.join('ff3e::1', 'ff1e::2'), UsageError);
    assert.throws(() => s.join('ff3e::1', 'fd00::1%lo'), UsageError);
    await assert.rejects(s.send(new Uint8Array(1), '2001:db8::1'), UsageError);
    assert.throws(() => s.trySend(new Uint8Array(1), 'fd00::1'), UsageError);
    await assert.rejects(s.send(new Uint8Array(1), 'ff1e::1', 0), UsageError);
    assert.deepEqual(s.memberships, []);
    assert.equal(s.stats.sent, 0);
  } finally {
    await s.close();
  }
});

test('close() leaves nothing running: the process exits on its own', () => {
  const netIndex = new URL('../../src/net/index.js', import.meta.url).href;
  const script = `const { McastSocket } = await import(${JSON.stringify(netIndex)});
const ac = new AbortController();
const s = await McastSocket.open({ interface: 'lo', port: 0, signal: ac.signal });
const it = s.messages();
const pending = it.next();
await s.drain();
ac.abort();
await pending;
console.log('closed', s.closed);`;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 10000 });
  assert.equal(r.signal, null, 'the process had to be killed: something kept the event loop alive');
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout.trim(), 'closed true');
});
