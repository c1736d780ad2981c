// The publisher end to end in the network lab: `iotupd publish` in one namespace, a device
// process in another that joins the announce channel and verifies every beacon with the
// AnnounceFilter (test/publish/announce-listener.ts), real multicast between them.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { announceChannel, releaseChannel } from '../../src/announce/channels.js';
import { signBeacon } from '../../src/announce/sign.js';
import { issueDelegation } from '../../src/crypto/certs.js';
import { privateKeyFromSeed, saveKeyPair, signingKeyFrom, type SigningKey } from '../../src/crypto/keys.js';
import { JsonLines, labTest, type Lab } from '../../src/lab/index.js';

const here = fileURLToPath(new URL('.', import.meta.url));
const MAIN = join(here, '..', '..', 'src', 'cli', 'main.js');
const LISTENER = join(here, 'announce-listener.js');
const PRODUCT = 'sensor-v2';

type Line = Record<string, unknown>;
interface Proc {
  out: JsonLines;
  kill(): void;
  /** `ip netns exec` execs the command, so the child's pid is the publisher's own. */
  signal(sig: NodeJS.Signals): void;
  exit: Promise<{ code: number | null; stderr: string }>;
}

function spawn(lab: Lab, host: string, script: string, args: string[]): Proc {
  const h = lab.host(host);
  const child = lab.spawnNode(h, script, args);
  const out = new JsonLines(child, { name: host });
  return { out, kill: () => child.kill('SIGTERM'), signal: (sig) => child.kill(sig), exit: out.exited.then(({ code, stderr }) => ({ code, stderr })) };
}

function key(label: string, chain: Uint8Array[] = []): SigningKey {
  return signingKeyFrom(privateKeyFromSeed(createHash('sha256').update(`${label} ${process.pid}`).digest()), chain);
}

interface Setup {
  dir: string;
  rootPub: string;
  signerKey: string;
  signer: SigningKey;
}

function setup(): Setup {
  const dir = mkdtempSync(join(tmpdir(), 'iotupd-lab-publish-'));
  const root = key('root');
  const s = key('signer');
  const now = Math.floor(Date.now() / 1000);
  const cert = issueDelegation(root, s.publicKey, { products: [PRODUCT], notBefore: now - 3600, notAfter: now + 86400, minSequence: 1n, maxSequence: 100n });
  const signer = key('signer', [cert]);
  saveKeyPair(join(dir, 'root'), root);
  saveKeyPair(join(dir, 'signer'), signer);
  return { dir, rootPub: join(dir, 'root.pub'), signerKey: join(dir, 'signer.key'), signer };
}

/** `iotupd release create` (no network): returns its JSON summary. */
function createRelease(s: Setup, out: string, sequence: number, size = 40_000): Line {
  const image = join(s.dir, `image-${sequence}-${size}.bin`);
  writeFileSync(image, randomBytes(size));
  const stdout = execFileSync(process.execPath, [MAIN, 'release', 'create', '--image', image, '--key', s.signerKey, '--product', PRODUCT, '--sequence', String(sequence), '--version', `1.${sequence}`, '--out', out, '--json'], {
    encoding: 'utf8',
  });
  const line = JSON.parse(stdout.trim()) as Line;
  assert.equal(line.type, 'release');
  assert.match(String(line.manifestId), /^[0-9a-f]{64}$/);
  return line;
}

function listen(lab: Lab, host: string, s: Setup): Proc {
  return spawn(lab, host, LISTENER, ['listen', '--interface', lab.host(host).ifname, '--trust', s.rootPub, '--product', PRODUCT]);
}

function publish(lab: Lab, host: string, s: Setup, source: string[]): Proc {
  return spawn(lab, host, MAIN, ['publish', '--interface', lab.host(host).ifname, '--key', s.signerKey, ...source, '--announce-only', '--interval', '0.5', '--max-rate', '20', '--json']);
}

function beaconsOf(lines: Line[], manifestId: string): Line[] {
  return lines.filter((l) => (l.event === 'offer' || l.event === 'repeat') && ((l.offer as Line | undefined)?.manifestId ?? l.manifestId) === manifestId);
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

labTest('publish: announce, add while running, halt with rollback, withdraw; a device verifies every beacon', { hosts: ['pub', 'dev', 'evil'], timeout: 60_000 }, async (lab) => {
  const s = setup();
  try {
    const rel = join(s.dir, 'releases');
    const r1 = createRelease(s, join(rel, 'r1'), 1);
    // Outside the beacon key's delegated range (1..100): devices would refuse its beacons, so the
    // publisher refuses to announce it.
    const r200 = createRelease(s, join(rel, 'r200'), 200);
    const dev = listen(lab, 'dev', s);
    await dev.out.waitFor((l) => l.event === 'ready');
    const pub = publish(lab, 'pub', s, ['--releases', rel]);

    // 1. The first release is offered, with its data channel as named by the publisher and the device alike.
    const offer1 = await dev.out.waitFor((l) => l.event === 'offer' && (l.offer as Line).sequence === '1', 10_000);
    const o1 = offer1.offer as Line;
    assert.equal(o1.manifestId, r1.manifestId);
    const mid1 = new Uint8Array(Buffer.from(String(r1.manifestId), 'hex'));
    assert.equal(o1.group, releaseChannel(PRODUCT, 1n, mid1).group);
    assert.equal(o1.port, 4242);
    assert.equal(o1.size, 40_000);
    assert.equal(o1.dataTimeout, 60);
    const started = await pub.out.waitFor((l) => l.type === 'release-added' && l.sequence === '1');
    assert.equal(started.announceGroup, announceChannel(PRODUCT).group);
    const refusedRelease = await pub.out.waitFor((l) => l.type === 'release-error' && String(l.source).endsWith('r200'));
    assert.equal(refusedRelease.code, 'ERR_DELEGATION');

    // 2. A release added to the watched directory while running.
    const r2 = createRelease(s, join(rel, 'r2'), 2);
    await dev.out.waitFor((l) => l.event === 'offer' && (l.offer as Line).manifestId === r2.manifestId, 10_000);

    // 3. Forged beacons from another host: a tampered copy of a signed one, and one by an undelegated key.
    // Its counter is ahead of the publisher's (microseconds, an hour from now), so that only the
    // signature can refuse it (an old counter would be refused as a replay before any crypto).
    const real = signBeacon(
      { kind: 'announce', counter: BigInt(Date.now() + 3_600_000) * 1000n, issuedAt: Math.floor(Date.now() / 1000), expires: Math.floor(Date.now() / 1000) + 600, product: PRODUCT, sequence: 7n, manifestId: new Uint8Array(32).fill(7), version: 'x', objectId: new Uint8Array(8), size: 1, group: 'ff1e::7', port: 4242, dataTimeout: 5, channel: '' },
      s.signer,
    );
    const tampered = real.slice();
    tampered[tampered.length - 70] = (tampered[tampered.length - 70] as number) ^ 0x40;
    const stranger = signBeacon({ kind: 'halt', counter: BigInt(Date.now() + 3_600_000) * 1000n, issuedAt: Math.floor(Date.now() / 1000), expires: Math.floor(Date.now() / 1000) + 600, product: PRODUCT, sequence: 1n, manifestId: mid1, rollback: true }, key('stranger'));
    const ann = announceChannel(PRODUCT);
    for (const bytes of [tampered, stranger]) {
      const sent = spawn(lab, 'evil', LISTENER, ['send', '--interface', lab.host('evil').ifname, '--group', ann.group, '--port', String(ann.port), '--hex', Buffer.from(bytes).toString('hex'), '--count', '3']);
      assert.equal((await sent.exit).code, 0);
    }
    await dev.out.waitFor((l) => l.event === 'stats' && Number((l.refused as Line).forged) >= 1 && Number((l.refused as Line).untrusted) >= 1, 5000);
    assert.equal(dev.out.lines.filter((l) => l.event === 'halt').length, 0, 'the forged halt was not acted on');

    // 4. Halt release 1 with rollback: devices get a signed HALT; no more offers for it.
    writeFileSync(join(rel, 'r1', 'halt'), 'rollback\n');
    const h = await dev.out.waitFor((l) => l.event === 'halt', 10_000);
    assert.equal((h.halt as Line).manifestId, r1.manifestId);
    assert.equal((h.halt as Line).rollback, true);
    assert.equal((h.halt as Line).sequence, '1');

    // 5. Withdraw release 2 (remove its directory): its beacons stop. First it is heard announced
    // a few times (two releases and a halt at 0.5 s each come close to the device's per-signer
    // verification budget of 4 a second, so on a busy machine some are refused as flood).
    await dev.out.waitFor(() => beaconsOf(dev.out.lines, String(r2.manifestId)).length >= 3, 10_000);
    rmSync(join(rel, 'r2'), { recursive: true });
    await pub.out.waitFor((l) => l.type === 'release-withdrawn' && l.manifestId === r2.manifestId, 10_000);
    await sleep(300); // a beacon already in flight
    const before = beaconsOf(dev.out.lines, String(r2.manifestId)).length;
    await sleep(2000);
    assert.equal(beaconsOf(dev.out.lines, String(r2.manifestId)).length, before, 'no beacons after withdrawal');
    assert.ok(before >= 3, `release 2 was announced ${before} times`);

    // Rates: one release every 0.5 s after its fast start; never more than 20 beacons in a second.
    const accepted = dev.out.lines.filter((l) => l.event === 'offer' || l.event === 'repeat' || l.event === 'halt');
    const times = accepted.map((l) => Number(l.at)).sort((a, b) => a - b);
    assert.ok(times.length >= 10, `${times.length} beacons accepted`);
    for (let i = 20; i < times.length; i++) assert.ok((times[i] as number) - (times[i - 20] as number) >= 900, 'at most 20 beacons per second');
    const r1times = beaconsOf(dev.out.lines, String(r1.manifestId)).map((l) => Number(l.at));
    for (let i = 1; i < r1times.length; i++) assert.ok((r1times[i] as number) - (r1times[i - 1] as number) >= 400, `release 1 beacons ${r1times[i - 1]} -> ${r1times[i]}`);

    pub.kill();
    const pe = await pub.exit;
    assert.equal(pe.code, 0, pe.stderr);
    assert.ok(pub.out.lines.some((l) => l.type === 'stopped'));
    dev.kill();
    assert.equal((await dev.exit).code, 0, 'the listener (listenForAnnouncements) ends cleanly on abort');
    const final = dev.out.lines.filter((l) => l.event === 'stats').pop() as Line;
    assert.equal(final.final, true);
    const refused = final.refused as Record<string, number>;
    // Every datagram the device received is accounted for: accepted, or refused with a reason.
    const total = Number(final.offers) + Number(final.repeats) + Number(final.halts) + Object.values(refused).reduce((a, b) => a + b, 0);
    assert.equal(total, Number(final.datagrams));
    assert.equal(refused.malformed, 0);
    assert.equal(dev.out.lines.filter((l) => (l.offer as Line | undefined)?.manifestId === r200.manifestId).length, 0);
  } finally {
    rmSync(s.dir, { recursive: true, force: true });
  }
});

labTest('publish: two publishers announce different releases with one sequence; the device refuses both (config file, SIGHUP)', { hosts: ['pub1', 'pub2', 'dev'], timeout: 60_000 }, async (lab) => {
  const s = setup();
  try {
    const a = createRelease(s, join(s.dir, 'a'), 5, 30_000);
    const b = createRelease(s, join(s.dir, 'b'), 5, 31_000);
    assert.notEqual(a.manifestId, b.manifestId);
    const confA = join(s.dir, 'a.json');
    const confB = join(s.dir, 'b.json');
    writeFileSync(confA, JSON.stringify({ releases: [{ manifest: 'a/manifest', image: 'a/image' }] }));
    writeFileSync(confB, JSON.stringify({ releases: [] }));
    const dev = listen(lab, 'dev', s);
    await dev.out.waitFor((l) => l.event === 'ready');
    const p1 = publish(lab, 'pub1', s, ['--config', confA]);
    const p2 = publish(lab, 'pub2', s, ['--config', confB]);
    await dev.out.waitFor((l) => l.event === 'offer' && (l.offer as Line).manifestId === a.manifestId, 10_000);
    await p2.out.waitFor((l) => l.type === 'reloaded');
    // SIGHUP makes the second publisher pick up its changed config: the conflicting release.
    writeFileSync(confB, JSON.stringify({ releases: [{ manifest: 'b/manifest', image: 'b/image' }] }));
    p2.signal('SIGHUP');
    await p2.out.waitFor((l) => l.type === 'release-added' && l.manifestId === b.manifestId, 10_000);
    const c = await dev.out.waitFor((l) => l.event === 'conflict', 10_000).catch((err: unknown) => {
      throw new Error(`${String(err)}; pub2: ${JSON.stringify(p2.out.lines.filter((l) => l.type !== 'beacon').slice(-5))} beacons ${p2.out.lines.filter((l) => l.type === 'beacon').length}`);
    });
    assert.equal(c.sequence, '5');
    assert.deepEqual(new Set(c.manifestIds as string[]), new Set([a.manifestId, b.manifestId]));
    await dev.out.waitFor((l) => l.event === 'stats' && Number((l.refused as Line).conflict) >= 4, 10_000);
    const afterConflict = dev.out.lines.slice(dev.out.lines.indexOf(c) + 1);
    assert.equal(afterConflict.filter((l) => l.event === 'offer' || l.event === 'repeat').length, 0, 'neither release is offered after the conflict');
    for (const p of [p1, p2]) {
      p.kill();
      assert.equal((await p.exit).code, 0);
    }
    dev.kill();
    await dev.exit;
  } finally {
    rmSync(s.dir, { recursive: true, force: true });
  }
});
