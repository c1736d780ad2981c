import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { InterfaceError, UsageError } from '../../src/errors.js';
import { listInterfaces, resolveInterface, McastSocket, isMulticastGroup, isSourceSpecific, multicastScope } from '../../src/net/index.js';

function rejectsWith(name: string, code: string): void {
  assert.throws(
    () => resolveInterface(name),
    (err: unknown) => err instanceof InterfaceError && err.code === code,
    `resolveInterface(${JSON.stringify(name)}) should throw ${code}`,
  );
}

test('unknown, empty, numeric and malformed interface names are errors, never a fallback', () => {
  rejectsWith('', 'ERR_INTERFACE_EMPTY');
  rejectsWith('2', 'ERR_INTERFACE_INVALID');
  rejectsWith('1', 'ERR_INTERFACE_INVALID');
  rejectsWith('eth0%x', 'ERR_INTERFACE_INVALID');
  rejectsWith('lo%1', 'ERR_INTERFACE_INVALID');
  rejectsWith('::%lo', 'ERR_INTERFACE_INVALID');
  rejectsWith('a/b', 'ERR_INTERFACE_INVALID');
  rejectsWith('..', 'ERR_INTERFACE_INVALID');
  rejectsWith('lo ', 'ERR_INTERFACE_INVALID');
  rejectsWith('x'.repeat(16), 'ERR_INTERFACE_INVALID');
  rejectsWith('iunosuchif0', 'ERR_INTERFACE_UNKNOWN');
  assert.throws(() => resolveInterface(undefined as unknown as string), InterfaceError);
});

test('lo resolves to its kernel ifindex', () => {
  const lo = resolveInterface('lo');
  assert.equal(lo.name, 'lo');
  assert.equal(lo.index, Number(readFileSync('/sys/class/net/lo/ifindex', 'utf8').trim()));
  assert.ok(listInterfaces().some((i) => i.name === 'lo' && i.index === lo.index));
});

test('McastSocket.open rejects a bad interface before creating a socket', async () => {
  await assert.rejects(McastSocket.open({ interface: 'iunosuchif0' }), (e: unknown) => e instanceof InterfaceError && e.code === 'ERR_INTERFACE_UNKNOWN');
  await assert.rejects(McastSocket.open({ interface: '' }), InterfaceError);
  await assert.rejects(McastSocket.open({ interface: '2' }), InterfaceError);
  await assert.rejects(McastSocket.open({ interface: 'lo', hopLimit: 256 }), UsageError);
  await assert.rejects(McastSocket.open({ interface: 'lo', port: 70000 }), UsageError);
  await assert.rejects(McastSocket.open({ interface: 'lo', bindAddress: '2001:db8::1' }), UsageError);
  await assert.rejects(McastSocket.open({ interface: 'lo', recvBufferSize: 10 }), UsageError);
});

test('group address checks', () => {
  assert.ok(isMulticastGroup('ff1e::1'));
  assert.ok(isMulticastGroup('FF02::1'));
  assert.ok(!isMulticastGroup('ff::1')); // 00ff::1
  assert.ok(!isMulticastGroup('ff02::1%lo'));
  assert.ok(!isMulticastGroup('fe80::1'));
  assert.ok(!isMulticastGroup('ff1e::1::2'));
  assert.ok(!isMulticastGroup('239.1.1.1'));
  assert.equal(multicastScope('ff1e::1'), 14);
  assert.equal(multicastScope('ff02::1'), 2);
  assert.ok(isSourceSpecific('ff3e::1234'));
  assert.ok(isSourceSpecific('ff3e:0:0:0:0:0:0:1'));
  assert.ok(!isSourceSpecific('ff3e:40:2001:db8::1')); // RFC 3306 prefix-based, not SSM
  assert.ok(!isSourceSpecific('ff1e::1'));
});

test('validation follows the current network namespace, not a stale /sys', (t) => {
  // `unshare -rn` gives a new network namespace but keeps the parent's sysfs mount, so
  // /sys/class/net still lists the parent's interfaces there: they must not validate.
  const parentOnly = listInterfaces().find((i) => i.name !== 'lo');
  const probe = spawnSync('unshare', ['-rn', 'true']);
  if (!parentOnly || probe.status !== 0) {
    t.skip(!parentOnly ? 'no interface besides lo to compare against' : 'unshare -rn is not permitted here');
    return;
  }
  const netIndex = new URL('../../src/net/index.js', import.meta.url).href;
  const script = `const m = await import(${JSON.stringify(netIndex)});
const fs = await import('node:fs');
const out = { sysfs: fs.existsSync('/sys/class/net/${parentOnly.name}') };
try { m.resolveInterface('${parentOnly.name}'); out.code = 'resolved'; } catch (e) { out.code = e.code; }
out.lo = m.resolveInterface('lo').name;
console.log(JSON.stringify(out));`;
  const r = spawnSync('unshare', ['-rn', process.execPath, '--input-type=module', '-e', script], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const out = JSON.parse(r.stdout) as { sysfs: boolean; code: string; lo: string };
  assert.deepEqual(out, { sysfs: true, code: 'ERR_INTERFACE_UNKNOWN', lo: 'lo' });
});
