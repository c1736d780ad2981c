// Real multicast in the network lab: a signed, encrypted transfer with signed digests reaches a
// device while an insider (holding the group key, not a pinned key) sends its own "update" on the
// same channel; then the same release is replayed and the device refuses it (anti-rollback).
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { JsonLines, labTest, type Lab } from '../../src/lab/index.js';
import { generateGroupKey, generateSigningKey, issueDelegation, saveGroupKey, saveKeyPair } from '../../src/crypto/index.js';

const here = fileURLToPath(new URL('.', import.meta.url));
const MAIN = join(here, '..', '..', 'src', 'cli', 'main.js');
interface Proc {
  child: ChildProcess;
  events: Record<string, unknown>[];
  exit: Promise<{ code: number | null; stderr: string }>;
  /** The first JSON line for which `pred` is true; rejects if the process exits first. */
  waitFor: (pred: (o: Record<string, unknown>) => boolean) => Promise<Record<string, unknown>>;
}

function start(lab: Lab, host: string, args: string[]): Proc {
  const h = lab.host(host);
  const child = lab.spawnNode(h, MAIN, [...args, '--interface', h.ifname, '--json']);
  const out = new JsonLines(child, { name: host });
  return { child, events: out.lines, exit: out.exited, waitFor: (pred) => out.waitFor(pred) };
}

/** Resolves once `iotupd recv` has joined its group (its JSON event 'listening'). */
async function listening(p: Proc): Promise<void> {
  await p.waitFor((o) => o.type === 'event' && o.event === 'listening');
}

async function stop(p: Proc): Promise<void> {
  p.child.kill('SIGTERM');
  await p.exit;
}

function sha256(path: string): string {
  return createHash('sha256').update(readFileSync(path)).digest('hex');
}

labTest('signed + encrypted + digests over real multicast with an insider sending on the same channel; replay refused', { hosts: ['sender', 'dev', 'insider'], timeout: 90_000 }, async (lab) => {
  const dir = mkdtempSync(join(tmpdir(), 'iotupd-lab-sec-'));
  try {
    const root = generateSigningKey();
    const signer = generateSigningKey();
    const now = Math.floor(Date.now() / 1000);
    signer.chain = [issueDelegation(root, signer.publicKey, { products: ['sensor-v2'], notBefore: now - 60, notAfter: now + 3600, maxSequence: 100n })];
    saveKeyPair(join(dir, 'root'), root);
    saveKeyPair(join(dir, 'signer'), signer);
    saveKeyPair(join(dir, 'mallory'), generateSigningKey());
    saveGroupKey(join(dir, 'group.key'), generateGroupKey());
    const image = join(dir, 'image.bin');
    const evil = join(dir, 'evil.bin');
    writeFileSync(image, randomBytes(1_500_000));
    writeFileSync(evil, randomBytes(1_500_000));
    await lab.impair('dev', { lossPercent: 10 });
    const ch = ['--channel', 'lab.secure.one'];
    const gk = ['--group-key', join(dir, 'group.key'), '--encrypt'];
    const device = ['--trust', join(dir, 'root.pub'), '--product', 'sensor-v2', '--state', join(dir, 'state'), ...gk];
    const out = join(dir, 'installed.bin');
    const dev = start(lab, 'dev', ['recv', out, ...ch, ...device]);
    await listening(dev);
    const ins = start(lab, 'insider', ['send', evil, ...ch, '--key', join(dir, 'mallory.key'), '--product', 'sensor-v2', '--sequence', '99', ...gk, '--rate', '15']);
    // The insider starts first, so the device sees (and refuses) its manifest before the genuine
    // one: SecureSender sends the manifest first and again every 200 datagrams, so 2000 datagrams
    // hold ten copies (at 10 % loss, the device misses all of them with negligible probability).
    await ins.waitFor((o) => o.type === 'progress' && Number(o.packets) >= 2000);
    const snd = start(lab, 'sender', ['send', image, ...ch, '--key', join(dir, 'signer.key'), '--product', 'sensor-v2', '--sequence', '7', ...gk, '--digests', '--rate', '15']);
    const { code, stderr } = await dev.exit;
    assert.equal(code, 0, stderr);
    assert.equal(sha256(out), sha256(image));
    const stats = dev.events.find((e) => e.type === 'stats') as Record<string, unknown>;
    const sec = stats.security as { manifest: { sequence: string }; manifestErrors: Record<string, number>; drops: Record<string, number>; blocksVerified: number };
    assert.equal(sec.manifest.sequence, '7');
    assert.ok((sec.manifestErrors.ERR_UNTRUSTED_KEY ?? 0) >= 1, JSON.stringify(sec));
    assert.ok((sec.drops['no-manifest'] ?? 0) + (sec.drops.foreign ?? 0) > 0, 'the insider data was dropped');
    assert.ok(sec.blocksVerified >= 1);
    assert.match(readFileSync(join(dir, 'state', 'iotupd-state.json'), 'utf8'), /"installedSequence":"7"/);

    // Replay: the device, now at 7, listens again while the same release is still being sent.
    const again = start(lab, 'dev', ['recv', join(dir, 'again.bin'), ...ch, ...device, '--timeout', '4']);
    const r2 = await again.exit;
    assert.notEqual(r2.code, 0);
    assert.ok(!existsSync(join(dir, 'again.bin')));
    const s2 = again.events.find((e) => e.type === 'stats') as Record<string, unknown>;
    const sec2 = s2.security as { manifestErrors: Record<string, number> };
    assert.ok((sec2.manifestErrors.ERR_ROLLBACK ?? 0) >= 1, JSON.stringify(s2));
    await stop(snd);
    await stop(ins);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

labTest('tags only (default poly1305) over real multicast with loss; a device expecting HMAC tags drops every packet and writes nothing', { hosts: ['sender', 'dev', 'other'], timeout: 60_000 }, async (lab) => {
  const dir = mkdtempSync(join(tmpdir(), 'iotupd-lab-tag-'));
  try {
    const root = generateSigningKey();
    saveKeyPair(join(dir, 'root'), root);
    saveGroupKey(join(dir, 'group.key'), generateGroupKey());
    const image = join(dir, 'image.bin');
    writeFileSync(image, randomBytes(1_000_000));
    await lab.impair('dev', { lossPercent: 10 });
    const ch = ['--channel', 'lab.secure.tags'];
    const device = (name: string) => ['--trust', join(dir, 'root.pub'), '--product', 'sensor-v2', '--state', join(dir, `state-${name}`), '--group-key', join(dir, 'group.key')];
    const out = join(dir, 'installed.bin');
    const wrong = join(dir, 'wrong.bin');
    const dev = start(lab, 'dev', ['recv', out, ...ch, ...device('dev')]);
    const other = start(lab, 'other', ['recv', wrong, ...ch, ...device('other'), '--mac', 'hmac', '--timeout', '6']);
    await Promise.all([listening(dev), listening(other)]);
    const snd = start(lab, 'sender', ['send', image, ...ch, '--key', join(dir, 'root.key'), '--product', 'sensor-v2', '--sequence', '3', '--group-key', join(dir, 'group.key'), '--rate', '15']);
    const { code, stderr } = await dev.exit;
    assert.equal(code, 0, stderr);
    assert.equal(sha256(out), sha256(image));
    const sec = (dev.events.find((e) => e.type === 'stats') as Record<string, unknown>).security as { drops: Record<string, number>; blocksVerified: number };
    assert.equal(sec.drops.auth, 0);
    assert.ok(sec.blocksVerified >= 1);
    const r2 = await other.exit;
    assert.notEqual(r2.code, 0);
    assert.ok(!existsSync(wrong));
    const s2 = (other.events.find((e) => e.type === 'stats') as Record<string, unknown>).security as { drops: Record<string, number>; manifest: unknown };
    // MANIFEST fragments carry poly1305 tags too: each fails the HMAC check ('auth'), so no
    // manifest is ever accepted, and the data is dropped before any cryptography ('no-manifest').
    assert.equal(s2.manifest, null, JSON.stringify(s2));
    assert.ok((s2.drops.auth ?? 0) >= 1, JSON.stringify(s2));
    assert.ok((s2.drops['no-manifest'] ?? 0) > 100, JSON.stringify(s2));
    await stop(snd);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
