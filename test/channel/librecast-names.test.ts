import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { Channel, channelGroup, hashGroup, sidebandGroup, formatIpv6 } from '../../src/channel/index.js';
import { compileProbes } from '../support/cprobes.js';
import { prng as rng } from '../support/prng.js';

// Group addresses computed by Librecast 0.5.1 itself (test/librecast/c/channel-probe.c) against
// ours, for many seeded-random names: empty, ASCII, unicode, long, arbitrary bytes (with NULs).
// No network traffic.


const hex = (b: Uint8Array): string => (b.length === 0 ? '-' : Buffer.from(b).toString('hex'));

function names(n: number): Uint8Array[] {
  const r = rng(20260424);
  const enc = new TextEncoder();
  const pick = (s: string): string => s.charAt(Math.floor(r() * s.length));
  const out: Uint8Array[] = [new Uint8Array(0), enc.encode('example.com'), enc.encode('a'.repeat(4000))];
  const alphabets = ['abcdefghijklmnopqrstuvwxyz0123456789./-_:', 'äöüßéèçñåøæ€', 'κανάλιсеть通道チャンネル', '📡🚀🔥👍🏽'];
  for (let i = out.length; i < n; i++) {
    const kind = i % 4;
    const len = kind === 3 ? 200 + Math.floor(r() * 2000) : Math.floor(r() * 64);
    if (i % 5 === 4) {
      out.push(Uint8Array.from({ length: len }, () => Math.floor(r() * 256))); // raw bytes, NULs included
    } else {
      let s = '';
      for (let j = 0; j < len; j++) s += kind === 3 ? pick(alphabets[Math.floor(r() * alphabets.length)] ?? 'x') : pick(alphabets[kind] ?? 'x');
      out.push(enc.encode(s));
    }
  }
  return out;
}

const probes = compileProbes(['channel-probe']);

test('group addresses agree with Librecast 0.5.1 for 500 random names, sidebands (random and sparse) and sidehashes', { skip: probes.ok ? false : probes.reason }, () => {
  if (!probes.ok) return;
  try {
    const r = rng(7);
    const list = names(500);
    const lines: string[] = [];
    const expected: string[] = [];
    for (const name of list) {
      lines.push(`new ${hex(name)}`);
      expected.push(channelGroup(name));
      if (!name.includes(0)) {
        lines.push(`str ${hex(name)}`); // lc_channel_new: NUL-terminated string
        expected.push(channelGroup(name));
      }
      const band = (BigInt(Math.floor(r() * 2 ** 32)) << 32n) | BigInt(Math.floor(r() * 2 ** 32));
      lines.push(`side ${hex(name)} ${band}`);
      expected.push(formatIpv6(sidebandGroup(hashGroup(name), band)));
      // sparse bands (each 16-bit group zero with p = 0.6) exercise RFC 5952 '::' placement vs glibc inet_ntop
      let sparse = 0n;
      for (let g = 0; g < 4; g++) sparse = (sparse << 16n) | (r() < 0.6 ? 0n : BigInt(1 + Math.floor(r() * 0xffff)));
      lines.push(`side ${hex(name)} ${sparse}`);
      expected.push(formatIpv6(sidebandGroup(hashGroup(name), sparse)));
      const key = Uint8Array.from({ length: 32 }, () => Math.floor(r() * 256));
      lines.push(`hash ${hex(name)} ${hex(key)}`);
      expected.push(new Channel(name).sidehash(key).group);
    }
    const run = spawnSync(probes.bin['channel-probe'] ?? '', [], { input: lines.join('\n') + '\n', encoding: 'utf8', maxBuffer: 1 << 24 });
    assert.equal(run.status, 0, run.stderr);
    const got = run.stdout.trim().split('\n');
    assert.equal(got.length, expected.length);
    let zeroRuns = 0;
    for (let i = 0; i < expected.length; i++) {
      assert.equal(expected[i], got[i], `line ${i}: ${lines[i]?.slice(0, 80)}`);
      if (got[i]?.includes('::') || got[i]?.includes(':0:')) zeroRuns++;
    }
    process.stdout.write(`# compared ${expected.length} groups with Librecast 0.5.1 (${zeroRuns} with zero groups)\n`);
  } finally {
    probes.cleanup();
  }
});
