// Real multicast between real processes in network namespaces (src/lab): `iotupd send` in one
// host, `iotupd recv` in others, with loss, a late joiner, interruptions and storage failures.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { ChunkBitmap, decodeState } from '../../src/carousel/index.js';
import { chunkCount } from '../../src/wire/iotupd-frame.js';
import { labTest } from '../../src/lab/index.js';
import { randomBytes } from './sim.js';
import { listening, runCli, statsLine, type CliRun } from './cli.js';

const dir = mkdtempSync(join(tmpdir(), 'iotupd-carousel-lab-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function makeFile(name: string, size: number, seed: number): { path: string; bytes: Uint8Array } {
  const path = join(dir, name);
  const bytes = randomBytes(size, seed);
  writeFileSync(path, bytes);
  return { path, bytes };
}

/** Waits until the resume state at `path` records more than `chunks` chunks (or `run` exits). */
async function stateHolds(path: string, chunks: number, run: CliRun): Promise<void> {
  let exited = false;
  void run.exit.then(() => (exited = true));
  for (;;) {
    assert.equal(exited, false, `receiver exited before its state held ${chunks} chunks: ${run.stderr()}`);
    // Written atomically (rename), so a read sees a whole state or none yet.
    if (existsSync(path)) {
      const st = decodeState(readFileSync(path));
      if (new ChunkBitmap(chunkCount(st.size), st.present).count > chunks) return;
    }
    await sleep(50);
  }
}

labTest('a file arrives intact at 3 receivers: one with 10 % loss, one joining late', { hosts: ['sender', 'dev1', 'dev2', 'dev3'], timeout: 90_000 }, async (lab) => {
  const src = makeFile('three.bin', 1024 * 1024 + 333, 21);
  const channel = `lab-three-${lab.id}`;
  await lab.impair('dev2', { lossPercent: 10 });
  const recv = (host: string) =>
    runCli(lab, host, ['recv', '--format', 'iotupd', join(dir, `three-${host}.bin`), '--channel', channel, '--interface', lab.host(host).ifname, '--json', '--timeout', '60']);
  const r1 = recv('dev1');
  const r2 = recv('dev2');
  await Promise.all([listening(r1), listening(r2)]); // both joined before the first frame
  const tx = runCli(lab, 'sender', ['send', '--format', 'iotupd', src.path, '--channel', channel, '--interface', lab.host('sender').ifname, '--rate', '20', '--json']);
  // dev3 joins once the carousel is well into its first pass.
  await tx.waitFor((o) => o.type === 'progress' && Number(o.frames) > 300);
  const r3 = recv('dev3');
  const results = await Promise.all([r1.exit, r2.exit, r3.exit]);
  // Run again on dev1's finished copy (no state file): the existing file is hashed first.
  const again = recv('dev1');
  assert.equal((await again.exit).code, 0, again.stderr());
  assert.equal(statsLine(again)!.alreadyPresent, true);
  // A copy with one wrong byte and no state is fetched again, never accepted.
  const bad = new Uint8Array(readFileSync(join(dir, 'three-dev2.bin')));
  bad[5000]! ^= 0xff;
  writeFileSync(join(dir, 'three-dev2.bin'), bad);
  const fix = recv('dev2');
  assert.equal((await fix.exit).code, 0, fix.stderr());
  assert.equal(statsLine(fix)!.alreadyPresent, false);
  tx.child.kill('SIGINT');
  await tx.exit;
  for (const [i, r] of [r1, r2, r3].entries()) {
    assert.deepEqual(results[i], { code: 0, signal: null }, `dev${i + 1}: ${r.stderr()}`);
    assert.deepEqual(new Uint8Array(readFileSync(join(dir, `three-dev${i + 1}.bin`))), src.bytes, `dev${i + 1} copy differs`);
    const s = statsLine(r)!;
    assert.equal(s.result, 'ok');
    assert.equal(s.chunksTotal, Math.ceil(src.bytes.length / 1194));
    assert.equal(existsSync(join(dir, `three-dev${i + 1}.bin.iotupd-state`)), false, 'state removed once verified');
  }
  const s2 = statsLine(r2)!;
  assert.ok(Number(s2.lossEstimate) > 0.03, `10 % loss seen as ${String(s2.lossEstimate)}`);
  assert.ok(Number(s2.duplicate) > 0, 'a lossy receiver needs a second pass, so it sees duplicates');
});

labTest('a receiver interrupted (SIGINT) and killed (SIGKILL) resumes with only the missing chunks', { hosts: ['sender', 'dev'], timeout: 120_000 }, async (lab) => {
  const src = makeFile('resume.bin', 2 * 1024 * 1024, 22);
  const out = join(dir, 'resume-out.bin');
  const channel = `lab-resume-${lab.id}`;
  const total = Math.ceil(src.bytes.length / 1194);
  const tx = runCli(lab, 'sender', ['send', '--format', 'iotupd', src.path, '--channel', channel, '--interface', lab.host('sender').ifname, '--rate', '4', '--json']);
  const recvArgs = ['recv', '--format', 'iotupd', out, '--channel', channel, '--interface', lab.host('dev').ifname, '--json', '--timeout', '100'];
  try {
    // Run 1: SIGINT after some chunks -> exit 130, partial file and state kept.
    const a = runCli(lab, 'dev', recvArgs);
    await a.waitFor((o) => o.type === 'progress' && Number(o.chunks) > total * 0.2);
    a.child.kill('SIGINT');
    const ea = await a.exit;
    assert.equal(ea.code, 130, a.stderr());
    assert.match(a.stderr(), /interrupted by SIGINT: partial file kept/);
    assert.equal(a.stderr().trim().split('\n').length, 1, 'one clear line');
    assert.ok(existsSync(out + '.iotupd-state'));
    const sa = statsLine(a)!;
    assert.equal(sa.result, 'error');

    // Run 2: resumes, then SIGKILL (no chance to save anything at exit).
    const b = runCli(lab, 'dev', recvArgs);
    const resume = await b.waitFor((o) => o.type === 'event' && o.event === 'resume');
    assert.ok(Number(resume.chunks) >= Number(sa.chunks) - 0, `resumed ${String(resume.chunks)} chunks, had ${String(sa.chunks)}`);
    // Killed once a periodic state save has recorded more than half of the chunks.
    await stateHolds(out + '.iotupd-state', total * 0.5, b);
    b.child.kill('SIGKILL');
    const eb = await b.exit;
    assert.equal(eb.signal, 'SIGKILL');

    // Run 3: resumes from the state the killed run left and completes.
    const c = runCli(lab, 'dev', recvArgs);
    const ec = await c.exit;
    assert.equal(ec.code, 0, c.stderr());
    const sc = statsLine(c)!;
    assert.ok(Number(sc.resumedChunks) > total * 0.5, `resumed ${String(sc.resumedChunks)} of ${total}`);
    assert.equal(Number(sc.written), total - Number(sc.resumedChunks), 'only the missing chunks were written');
    assert.deepEqual(new Uint8Array(readFileSync(out)), src.bytes);
    assert.equal(existsSync(out + '.iotupd-state'), false);
  } finally {
    tx.child.kill('SIGINT');
    await tx.exit;
  }
});

labTest('unwritable output and a full disk: one clear line, non-zero exit, nothing crashes', { hosts: ['sender', 'dev'], timeout: 60_000 }, async (lab) => {
  const src = makeFile('full.bin', 1024 * 1024, 23);
  const channel = `lab-full-${lab.id}`;
  const ifname = lab.host('dev').ifname;
  // A path under a regular file cannot be created (ENOTDIR), even for root.
  const bad = runCli(lab, 'dev', ['recv', '--format', 'iotupd', join(src.path, 'out.bin'), '--channel', channel, '--interface', ifname, '--json']);
  const eb = await bad.exit;
  assert.equal(eb.code, 1);
  assert.match(bad.stderr(), /^iotupd: cannot write .*out\.bin: a path component is not a directory\n$/);

  // A 256 KiB tmpfs, private to the receiver's mount namespace, for a 1 MiB file: ENOSPC.
  const mnt = join(dir, 'small-fs');
  rmSync(mnt, { recursive: true, force: true });
  writeFileSync(join(dir, 'placeholder'), '');
  const { mkdirSync } = await import('node:fs');
  mkdirSync(mnt);
  const tx = runCli(lab, 'sender', ['send', '--format', 'iotupd', src.path, '--channel', channel, '--interface', lab.host('sender').ifname, '--rate', '20', '--json']);
  try {
    const full = runCli(
      lab,
      'dev',
      ['recv', '--format', 'iotupd', join(mnt, 'out.bin'), '--channel', channel, '--interface', ifname, '--json', '--timeout', '30'],
      ['unshare', '-m', '--propagation', 'private', 'sh', '-c', `mount -t tmpfs -o size=256k tmpfs ${mnt} && exec "$@"`, 'sh'],
    );
    const ef = await full.exit;
    assert.equal(ef.code, 1, full.stderr());
    assert.match(full.stderr(), /^iotupd: cannot write .*out\.bin: no space left on the device\n$/);
    const s = statsLine(full)!;
    assert.equal(s.result, 'error');
    assert.equal(s.error, 'ERR_STORAGE_FULL');
    assert.ok(Number(s.chunks) > 0 && Number(s.chunks) < Number(s.chunksTotal));
  } finally {
    tx.child.kill('SIGINT');
    await tx.exit;
  }
  assert.equal(statSync(mnt).isDirectory(), true);
});

labTest('two senders at different offsets feed one lossy receiver; seq gaps are tracked per sender', { hosts: ['s1', 's2', 'dev'], timeout: 60_000 }, async (lab) => {
  const src = makeFile('two.bin', 1024 * 1024, 24);
  const out = join(dir, 'two-out.bin');
  const channel = `lab-two-${lab.id}`;
  const send = (host: string, offset: number) =>
    runCli(lab, host, ['send', '--format', 'iotupd', src.path, '--channel', channel, '--interface', lab.host(host).ifname, '--rate', '2', '--offset', String(offset), '--json']);
  await lab.impair('dev', { lossPercent: 10 });
  const rx = runCli(lab, 'dev', ['recv', '--format', 'iotupd', out, '--channel', channel, '--interface', lab.host('dev').ifname, '--json', '--timeout', '50']);
  await listening(rx);
  const a = send('s1', 0);
  // s2 starts once s1 is about 200 frames ahead, so their seq counters differ: read as one
  // counter they would look like a loss of ~200 frames at every alternation.
  await a.waitFor((o) => o.type === 'progress' && Number(o.frames) >= 150);
  const b = send('s2', 512 * 1024);
  try {
    const e = await rx.exit;
    assert.equal(e.code, 0, rx.stderr());
    assert.deepEqual(new Uint8Array(readFileSync(out)), src.bytes);
    const s = statsLine(rx)!;
    // Two interleaved seq counters read as one would cancel each other's gaps (the other
    // sender's frames look late) and hide the 10 % loss; per sender it is measured.
    const est = Number(s.lossEstimate);
    assert.ok(est > 0.05 && est < 0.2, `10 % loss estimated as ${est}`);
  } finally {
    a.child.kill('SIGINT');
    b.child.kill('SIGINT');
    await Promise.all([a.exit, b.exit]);
  }
});
