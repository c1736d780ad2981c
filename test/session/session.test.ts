// The library API as a program uses it (the README's send and receive), between real processes
// over real multicast in the network lab: typed events in order, a signed release verified and
// recorded, and an abort that rejects both sides with the same AbortError.
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { JsonLines, labTest, type Lab } from '../../src/lab/index.js';
import { generateSigningKey, saveKeyPair, DeviceState } from '../../src/index.js';

const PEER = fileURLToPath(new URL('./peer.js', import.meta.url));

function peer(lab: Lab, host: string, role: 'send' | 'recv', opts: Record<string, unknown>): JsonLines & { child: ChildProcess } {
  const h = lab.host(host);
  const child = lab.spawnNode(h, PEER, [role, JSON.stringify({ ...opts, interface: h.ifname })]);
  return Object.assign(new JsonLines(child, { name: host }), { child });
}

labTest('send() and receive() of the public API: events in order, a signed release verified and recorded, abort rejects both with AbortError', { hosts: ['tx', 'rx'], timeout: 60_000 }, async (lab) => {
  const dir = mkdtempSync(join(tmpdir(), 'iotupd-session-'));
  try {
    const key = generateSigningKey();
    const { keyFile, pubFile } = saveKeyPair(join(dir, 'release'), key);
    const file = join(dir, 'fw.bin');
    writeFileSync(file, randomBytes(600_000));
    const out = join(dir, 'installed.bin');
    const state = join(dir, 'state');
    const common = { channel: 'lab.session.api', product: 'acme-sensor' };
    const rx = peer(lab, 'rx', 'recv', { ...common, out, trust: pubFile, state });
    await rx.waitFor((e) => e.event === 'listening', 20_000);
    const tx = peer(lab, 'tx', 'send', { ...common, file, key: keyFile, sequence: 42, version: '1.4.2', rateBps: 20e6 });
    const done = await rx.waitFor((e) => e.event === 'done' || e.event === 'rejected', 40_000);
    assert.equal(done.event, 'done', JSON.stringify(rx.lines));
    assert.equal(done.sequence, '42');
    assert.equal(done.version, '1.4.2');
    assert.equal(createHash('sha256').update(readFileSync(out)).digest('hex'), createHash('sha256').update(readFileSync(file)).digest('hex'));
    // Events in order: listening, then the verified manifest, the object, every block once.
    const names = rx.lines.map((e) => e.event);
    assert.equal(names[0], 'listening');
    assert.ok(names.indexOf('manifest') > 0 && names.indexOf('manifest') < names.indexOf('done'), names.join(','));
    assert.ok(names.indexOf('object') > 0 && names.indexOf('object') < names.indexOf('block'), names.join(','));
    const blocks = rx.lines.filter((e) => e.event === 'block').map((e) => Number(e.sbn)).sort((a, b) => a - b);
    assert.ok(blocks.length > 0);
    assert.deepEqual(blocks, [...new Set(blocks)], 'each block once');
    const start = tx.lines.find((e) => e.event === 'start');
    assert.ok(start, JSON.stringify(tx.lines));
    assert.deepEqual(blocks, Array.from({ length: Number(start.blocks) }, (_, i) => i), 'every block');
    // The install was recorded: the anti-rollback state now holds sequence 42.
    assert.equal(DeviceState.open(state, 'acme-sensor').policy().installedSequence, 42n);
    // The sender runs until aborted: its done rejects with AbortError, having sent symbols.
    tx.child.kill('SIGTERM');
    const txEnd = await tx.waitFor((e) => e.event === 'rejected' || e.event === 'done', 20_000);
    assert.deepEqual([txEnd.event, txEnd.name, txEnd.code, txEnd.abort], ['rejected', 'AbortError', 'ERR_ABORTED', true]);
    assert.ok(Number(txEnd.symbols) > 0);
    // A receive aborted before anything arrives rejects with the same AbortError.
    const rx2 = peer(lab, 'rx', 'recv', { ...common, out: join(dir, 'other.bin'), trust: pubFile, state, abortAfterMs: 1500 });
    const rx2End = await rx2.waitFor((e) => e.event === 'rejected' || e.event === 'done', 20_000);
    assert.deepEqual([rx2End.event, rx2End.name, rx2End.code, rx2End.abort], ['rejected', 'AbortError', 'ERR_ABORTED', true]);
    await Promise.all([tx.exited, rx.exited, rx2.exited]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
