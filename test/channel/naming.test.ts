import { test } from 'node:test';
import assert from 'node:assert/strict';
import { blake3 } from '@noble/hashes/blake3.js';
import {
  Channel,
  channelGroup,
  canonicalIpv6,
  formatIpv6,
  parseIpv6,
  sidebandGroup,
  sidehashGroup,
  hashGroup,
  DEFAULT_CHANNEL_PORT as DEFAULT_PORT,
} from '../../src/channel/index.js';
import { UsageError } from '../../src/errors.js';

// Known answers printed by Librecast 0.5.1 itself (docs/channels.md quotes some), and extra ones
// printed by test/librecast/c/channel-probe.c against liblibrecast 0.5.1.
const LIBRECAST: Array<[string, string]> = [
  ['example.com', 'ff1e:740d:6e6f:efbd:2c22:da0f:9126:91bf'],
  ['wibble', 'ff1e:4343:d014:74be:efca:942a:9024:7b49'],
  ['', 'ff1e:d03b:f86b:935f:a34d:71ad:7ebb:49f'],
  ['updates.example.com/sensor-v2', 'ff1e:f75:6a26:edee:7ac8:b12c:7dcc:e08c'],
  ['grüße/κανάλι/📡', 'ff1e:14af:34e2:5d5:bc71:a678:256d:b156'],
];

test('librecast scheme: lc_channel_new known answers', () => {
  for (const [name, group] of LIBRECAST) {
    assert.equal(channelGroup(name), group, name);
    assert.equal(channelGroup(name, { scheme: 'librecast' }), group, name);
    assert.equal(channelGroup(new TextEncoder().encode(name)), group, `${name} as bytes`);
  }
});

test('sha3 scheme: FOSDEM 2020 slide known answer', () => {
  assert.equal(channelGroup('example.com', { scheme: 'sha3' }), 'ff1e:873e:378f:f6a5:a1f6:fa49:95f1:faf');
  // The reference writes it with a leading zero (0faf); RFC 5952 drops it, same address.
  assert.equal(canonicalIpv6('ff1e:873e:378f:f6a5:a1f6:fa49:95f1:0faf'), channelGroup('example.com', { scheme: 'sha3' }));
});

test('sideband: lc_channel_sideband known answers (band in little-endian)', () => {
  const base = new Channel('example.com');
  assert.equal(base.sideband(1n).group, 'ff1e:740d:6e6f:efbd:100::');
  assert.equal(base.sideband(0x0102030405060708n).group, 'ff1e:740d:6e6f:efbd:807:605:403:201');
  const wibble = new Channel('wibble');
  assert.equal(wibble.sideband(0xffff_ffff_ffff_ffffn).group, 'ff1e:4343:d014:74be:ffff:ffff:ffff:ffff');
  assert.equal(wibble.sideband(0n).group, 'ff1e:4343:d014:74be::');
  assert.throws(() => base.sideband(-1n), UsageError);
  assert.throws(() => base.sideband(1n << 64n), UsageError);
  assert.throws(() => sidebandGroup(hashGroup('x'), 5 as unknown as bigint), UsageError);
});

test('sidehash: lc_channel_sidehash known answers (32-byte keys)', () => {
  const zero = new Uint8Array(32);
  const counting = Uint8Array.from({ length: 32 }, (_, i) => i);
  assert.equal(new Channel('example.com').sidehash(zero).group, 'ff1e:10ce:2ea8:98d2:28b3:8676:56be:baf1');
  assert.equal(new Channel('wibble').sidehash(counting).group, 'ff1e:ec2f:634c:64a2:b204:d752:be4c:f3f4');
  assert.throws(() => sidehashGroup(hashGroup('x'), new Uint8Array(16)), UsageError);
  assert.throws(() => sidehashGroup(hashGroup('x'), new Uint8Array(33)), UsageError);
});

test('scopes change only the scope nibble', () => {
  const g = 'ff1e:740d:6e6f:efbd:2c22:da0f:9126:91bf';
  assert.equal(channelGroup('example.com', { scope: 'global' }), g);
  assert.equal(channelGroup('example.com', { scope: 'link' }), g.replace('ff1e', 'ff12'));
  assert.equal(channelGroup('example.com', { scope: 'site' }), g.replace('ff1e', 'ff15'));
  assert.equal(channelGroup('example.com', { scope: 'org' }), g.replace('ff1e', 'ff18'));
  assert.equal(channelGroup('example.com', { scheme: 'sha3', scope: 'link' }), 'ff12:873e:378f:f6a5:a1f6:fa49:95f1:faf');
  assert.throws(() => channelGroup('x', { scope: 'planet' as never }), UsageError);
  assert.throws(() => channelGroup('x', { scheme: 'md5' as never }), UsageError);
  // a sideband keeps the scope of its base
  assert.equal(new Channel('example.com', { scope: 'link' }).sideband(1n).group, 'ff12:740d:6e6f:efbd:100::');
});

test('SSM mapping: ff3x::/96, group ID = 0x80000000 | BLAKE3(ff1e group)[0..3]', () => {
  const expectId = (global: Uint8Array): string => {
    const id = blake3(global).subarray(0, 4);
    const v = ((((id[0] ?? 0) | 0x80) << 24) >>> 0) + ((id[1] ?? 0) << 16) + ((id[2] ?? 0) << 8) + (id[3] ?? 0);
    return `${(v >>> 16).toString(16)}:${(v & 0xffff).toString(16)}`;
  };
  const global = parseIpv6('ff1e:740d:6e6f:efbd:2c22:da0f:9126:91bf');
  const ssm = new Channel('example.com', { ssm: true });
  assert.equal(ssm.ssm, true);
  assert.equal(ssm.group, `ff3e::${expectId(global)}`);
  assert.equal(ssm.group, 'ff3e::8ccd:2e29'); // pinned: docs/channels.md quotes it
  assert.match(ssm.group, /^ff3e::[89a-f][0-9a-f]{3}:[0-9a-f]{1,4}$/);
  assert.equal(new Channel('example.com', { ssm: true, scope: 'site' }).group, `ff35::${expectId(global)}`);
  // sidebands of an SSM channel stay in ff3e::/96 and differ from each other
  const bands = new Set<string>();
  for (let b = 0n; b < 64n; b += 1n) {
    const side = ssm.sideband(b);
    assert.match(side.group, /^ff3e::[89a-f][0-9a-f]{3}:[0-9a-f]{1,4}$/);
    assert.equal(side.group, `ff3e::${expectId(sidebandGroup(global, b))}`);
    bands.add(side.group);
  }
  assert.equal(bands.size, 64);
});

test('RFC 5952 formatting (section 4 examples) and parsing', () => {
  const cases: Array<[string, string]> = [
    ['2001:0db8:0000:0000:0000:0000:0000:0001', '2001:db8::1'],
    ['2001:db8:0:0:1:0:0:1', '2001:db8::1:0:0:1'], // 4.2.3: first of equal runs
    ['2001:db8:0:1:1:1:1:1', '2001:db8:0:1:1:1:1:1'], // 4.2.2: one zero group stays
    ['2001:0:0:1:0:0:0:1', '2001:0:0:1::1'], // 4.2.3: longest run
    ['2001:DB8::AAAA', '2001:db8::aaaa'], // 4.3: lower case
    ['0:0:0:0:0:0:0:0', '::'],
    ['0:0:0:0:0:0:0:1', '::1'],
    ['ff1e:0:0:0:0:0:0:0', 'ff1e::'],
    ['ff02::1', 'ff02::1'],
  ];
  for (const [input, canonical] of cases) assert.equal(canonicalIpv6(input), canonical, input);
  for (const bad of ['', ':', '1:2:3:4:5:6:7', '1:2:3:4:5:6:7:8:9', '1::2::3', 'g::1', '12345::', '::1%eth0', '1.2.3.4', ':::']) {
    assert.throws(() => parseIpv6(bad), UsageError, bad);
  }
  assert.throws(() => formatIpv6(new Uint8Array(15)), UsageError);
});

test('Channel: port default 4242, validation, fromGroup', () => {
  const c = new Channel('example.com');
  assert.equal(c.port, DEFAULT_PORT);
  assert.equal(DEFAULT_PORT, 4242);
  assert.equal(c.toString(), '[ff1e:740d:6e6f:efbd:2c22:da0f:9126:91bf]:4242');
  assert.deepEqual(c.toJSON(), { name: 'example.com', scheme: 'librecast', scope: 'global', ssm: false, group: c.group, port: 4242 });
  assert.equal(new Channel('example.com', { port: 5000 }).port, 5000);
  assert.equal(c.withPort(9).port, 9);
  for (const port of [0, -1, 65536, 1.5, Number.NaN]) assert.throws(() => new Channel('x', { port }), UsageError, String(port));
  const g = Channel.fromGroup('FF1E:740D:6E6F:EFBD:2C22:DA0F:9126:91BF');
  assert.equal(g.group, c.group);
  assert.ok(g.equals(c));
  assert.equal(g.scope, 'global');
  assert.equal(g.sideband(1n).group, 'ff1e:740d:6e6f:efbd:100::');
  assert.equal(Channel.fromGroup('ff3e::8000:1').ssm, true);
  assert.throws(() => Channel.fromGroup('2001:db8::1'), UsageError);
  // the address getter hands out a copy
  const a = c.address;
  a[2] = 0;
  assert.equal(c.address[2], 0x74);
});
