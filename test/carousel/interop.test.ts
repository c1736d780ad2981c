// Byte compatibility with the original iotupd: frames built by a C program from the original's
// packed struct, hashed by Librecast's own BLAKE3 and sent by Librecast 0.5.1 (lc_channel_send on
// lc_channel_new), received by `iotupd recv --format iotupd` over real multicast in the lab.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { blake3 } from '@noble/hashes/blake3.js';
import { labTest } from '../../src/lab/index.js';
import { listening, runCli, statsLine } from './cli.js';
import { randomBytes } from './sim.js';


const C_SOURCE = fileURLToPath(new URL('../../../test/carousel/c/iotupd-csend.c', import.meta.url));

function compile(dir: string): { ok: true; bin: string } | { ok: false; reason: string } {
  if (spawnSync('gcc', ['--version'], { stdio: 'ignore' }).status !== 0) return { ok: false, reason: 'gcc is not installed (apt-get install gcc)' };
  if (!existsSync('/usr/include/librecast/net.h')) return { ok: false, reason: 'Librecast headers are missing (apt-get install liblibrecast-dev)' };
  const bin = join(dir, 'iotupd-csend');
  const r = spawnSync('gcc', ['-O2', '-Wall', '-o', bin, C_SOURCE, '-llibrecast'], { encoding: 'utf8' });
  if (r.status !== 0) return { ok: false, reason: `cannot compile iotupd-csend.c: ${r.stderr.trim().split('\n').slice(0, 3).join(' / ')}` };
  return { ok: true, bin };
}

const dir = mkdtempSync(join(tmpdir(), 'iotupd-carousel-c-'));
const built = compile(dir);
test.after(() => rmSync(dir, { recursive: true, force: true }));

if (!built.ok) {
  test('frames from a C sender of the original struct (Librecast 0.5.1) arrive intact', { skip: built.reason }, () => {});
} else {
  labTest('frames from a C sender of the original struct (Librecast 0.5.1) arrive intact', { hosts: ['csender', 'dev'], timeout: 60_000 }, async (lab) => {
    // A size that is a multiple of 1194: the original's loop then also sends an empty tail frame.
    const bytes = randomBytes(1194 * 300, 41);
    const file = join(dir, 'c.bin');
    const out = join(dir, 'c-out.bin');
    writeFileSync(file, bytes);
    const channel = `c-interop-${lab.id}`;
    const rx = runCli(lab, 'dev', ['recv', '--format', 'iotupd', out, '--channel', channel, '--interface', lab.host('dev').ifname, '--json', '--timeout', '40']);
    // The C sender is brief: start it only once the receiver has joined the group.
    await listening(rx);
    // The first pass starts at frame 150, as for a receiver that joins the original's endless
    // loop mid-pass: the empty tail frame then comes before the file can be complete. (From
    // frame 0 the receiver can finish on frame 300, and whether it still sees the tail frame
    // while it hashes the file is a race of under a millisecond.)
    const c = await lab.exec('csender', built.bin, [lab.host('csender').ifname, channel, file, '20', '150']);
    const done = JSON.parse(c.stdout.trim().split('\n').pop()!) as { frames: number; hash: string };
    assert.equal(done.frames, 20 * 301 - 150);
    // Librecast's C BLAKE3 and @noble/hashes agree on the file hash the frames carry.
    assert.equal(done.hash, Buffer.from(blake3(bytes)).toString('hex'));
    const e = await rx.exit;
    assert.equal(e.code, 0, rx.stderr());
    assert.deepEqual(new Uint8Array(readFileSync(out)), bytes);
    const s = statsLine(rx)!;
    assert.equal(s.hash, done.hash);
    assert.equal(s.droppedTotal, 0, 'every C frame decodes');
    assert.ok(Number(s.empty) >= 1, 'the empty tail frame of the original is accepted');
    assert.equal(s.written, 300);
  });
}
