// The update system end to end in the network lab: `iotupd publish` serving releases and agent
// daemons (`iotupd agent --config F`) in their own namespaces, real multicast between them. One
// clean link, one with 10 % loss, one whose health check fails, one outside the rollout share,
// one of another device class; a third host floods the announce channel with junk and forged
// beacons. Then a second release, installed and halted with rollback. Every daemon reports its
// status; a collector (`iotupd status`) with the daemons' keys enrolled follows them.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { readAgentState } from '../../src/agent/state.js';
import { announceChannel } from '../../src/announce/channels.js';
import { signBeacon } from '../../src/announce/sign.js';
import { toHex } from '../../src/crypto/bytes.js';
import { DeviceState } from '../../src/crypto/rollback.js';
import { generateSigningKey, loadPublicKey } from '../../src/crypto/keys.js';
import { Registry } from '../../src/fleet/registry.js';
import { CLI_MAIN, deviceIds, makeFleetKeys, spawnAgent, spawnPublisher, writeAgentConfig, type FleetProcess } from '../../src/lab/fleet.js';
import { JsonLines, labTest, type JsonLine } from '../../src/lab/index.js';
import { createRelease } from '../../src/publish/create.js';

const here = fileURLToPath(new URL('.', import.meta.url));
const LISTENER = join(here, '..', 'publish', 'announce-listener.js');
const PRODUCT = 'thermo';
const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

interface Dev {
  name: string;
  id: string;
  stateDir: string;
  target: string;
  proc: FleetProcess;
}

labTest('agent: a fleet of agent daemons over multicast: install, loss, failed health check, rollout and class skips, forged flood, halt with rollback, status reports to a collector', { hosts: ['pub', 'clean', 'lossy', 'sick', 'outside', 'other', 'evil'], timeout: 90_000 }, async (lab) => {
  const dir = mkdtempSync(join(tmpdir(), 'iotupd-lab-agent-'));
  try {
    const keys = makeFleetKeys(dir, PRODUCT);
    const releases = join(dir, 'releases');
    mkdirSync(releases);
    const img1 = join(dir, 'v1.bin');
    const img2 = join(dir, 'v2.bin');
    writeFileSync(img1, randomBytes(300_000));
    writeFileSync(img2, randomBytes(200_000));
    // Release 1: half of the 'sensor' devices. Small source blocks (4 of them, where the sender's
    // default would make one): the publisher must send with the manifest's own partition.
    const r1 = await createRelease({ image: img1, key: keys.signer, product: PRODUCT, sequence: 1n, version: '1.0', out: join(releases, 'r1'), maxBlockSymbols: 64, policy: { rolloutBasisPoints: 5000, deviceClasses: ['sensor'] } });
    const [inA, inB, inC, inD] = deviceIds('dev', PRODUCT, 1n, 5000, true, 4) as [string, string, string, string];
    const [outA] = deviceIds('dev', PRODUCT, 1n, 5000, false, 1) as [string];
    const plan: { name: string; id: string; cls: string; health?: string }[] = [
      { name: 'clean', id: inA, cls: 'sensor' },
      { name: 'lossy', id: inB, cls: 'sensor' },
      { name: 'sick', id: inC, cls: 'sensor', health: 'exit 3' },
      { name: 'outside', id: outA, cls: 'sensor' },
      { name: 'other', id: inD, cls: 'gateway' },
    ];
    await lab.impair('lossy', { lossPercent: 10 });
    const devs: Dev[] = plan.map((p) => {
      const d = join(dir, p.name);
      mkdirSync(d);
      const cfg = writeAgentConfig(join(d, 'agent.json'), {
        deviceId: p.id,
        product: PRODUCT,
        deviceClass: p.cls,
        trust: [keys.rootPub],
        stateDir: join(d, 'state'),
        target: join(d, 'firmware.bin'),
        interface: lab.host(p.name).ifname,
        ...(p.health ? { healthCheck: p.health } : {}),
        // A budget that lets every change through at once (a report per second, bursts of 10).
        status: { budget: { bitsPerSecond: 1_000_000, fleetSize: 10, minIntervalSeconds: 1, burst: 10 } },
      });
      return { name: p.name, id: p.id, stateDir: join(d, 'state'), target: join(d, 'firmware.bin'), proc: spawnAgent(lab, p.name, cfg) };
    });
    // The operator enrols each device's status key, as the ready line names it.
    const registryFile = join(dir, 'registry.txt');
    const registry = new Registry();
    const statusKey = new Map<string, string>();
    let statusGroup = '';
    for (const d of devs) {
      const ready = await d.proc.waitFor((l) => l.type === 'ready', 15_000);
      const key = loadPublicKey(String(ready.statusKeyFile));
      assert.equal(toHex(key.keyId), ready.statusKey, `${d.name}: the key file is the key announced`);
      registry.enrol(d.id, key.publicKey);
      statusKey.set(d.name, String(ready.statusKey));
      statusGroup = String(ready.statusGroup);
    }
    registry.save(registryFile);
    const pubHost = lab.host('pub');
    const collectorProc = lab.spawnNode(pubHost, CLI_MAIN, ['status', '--product', PRODUCT, '--interface', pubHost.ifname, '--json', '--registry', registryFile]);
    const collector = new JsonLines(collectorProc, { name: 'collector' });
    const listening = await collector.waitFor((l) => l.type === 'listening', 15_000);
    assert.equal(listening.group, statusGroup, 'the daemons report on the collector\'s channel');
    /** The first trusted report of `d` whose device view passes `pred`. */
    const reported = async (d: Dev, pred: (v: JsonLine) => boolean): Promise<JsonLine> => {
      const l = await collector.waitFor((x) => x.type === 'report' && (x.device as JsonLine).deviceId === d.id && pred(x.device as JsonLine), 20_000);
      const v = l.device as JsonLine;
      assert.equal(v.trusted, true);
      assert.equal(v.keyId, statusKey.get(d.name), `${d.name} reports under its own key`);
      return v;
    };
    const pub = spawnPublisher(lab, 'pub', { signerKey: keys.signerKey, releases, rateMbit: 20, dataTimeout: 10 });

    // A third host floods the announce channel: junk, a tampered copy of a signed beacon, a
    // beacon by a key the devices do not trust (a forged HALT of release 1 among them).
    const ann = announceChannel(PRODUCT);
    const now = Math.floor(Date.now() / 1000);
    const forgedAnnounce = signBeacon(
      { kind: 'announce', counter: BigInt(Date.now() + 3_600_000) * 1000n, issuedAt: now, expires: now + 600, product: PRODUCT, sequence: 9n, manifestId: new Uint8Array(32).fill(9), version: 'evil', objectId: new Uint8Array(8), size: 1, group: 'ff1e::9', port: 4242, dataTimeout: 5, channel: '' },
      keys.signer,
    );
    const tampered = forgedAnnounce.slice();
    tampered[tampered.length - 70] = (tampered[tampered.length - 70] as number) ^ 0x40;
    const mid1 = new Uint8Array(Buffer.from(r1.manifestId, 'hex'));
    const strangerHalt = signBeacon({ kind: 'halt', counter: BigInt(Date.now() + 3_600_000) * 1000n, issuedAt: now, expires: now + 600, product: PRODUCT, sequence: 1n, manifestId: mid1, rollback: false }, generateSigningKey());
    const flood = async (bytes: Uint8Array, count: number) => {
      const child = lab.spawnNode('evil', LISTENER, ['send', '--interface', lab.host('evil').ifname, '--group', ann.group, '--port', String(ann.port), '--hex', Buffer.from(bytes).toString('hex'), '--count', String(count)]);
      await new Promise<void>((resolve) => child.once('close', () => resolve()));
    };
    await Promise.all([flood(randomBytes(300), 500), flood(tampered, 300), flood(strangerHalt, 300)]);

    const byName = (n: string) => devs.find((d) => d.name === n) as Dev;
    const outcome = (d: Dev, r: string) => d.proc.waitFor((l) => ['installed', 'rolled-back', 'failed', 'skipped'].includes(String(l.type)) && l.manifestId === r, 40_000);
    const clean = await outcome(byName('clean'), r1.manifestId);
    const lossy = await outcome(byName('lossy'), r1.manifestId);
    const sick = await outcome(byName('sick'), r1.manifestId);
    const outside = await outcome(byName('outside'), r1.manifestId);
    const other = await outcome(byName('other'), r1.manifestId);
    assert.equal(clean.type, 'installed');
    assert.equal(lossy.type, 'installed');
    assert.equal(sick.type, 'rolled-back');
    assert.equal(sick.code, 'ERR_HEALTH');
    assert.deepEqual([outside.type, outside.reason], ['skipped', 'not-in-rollout']);
    assert.deepEqual([other.type, other.reason], ['skipped', 'device-class']);
    // The path through the states, as printed.
    const phases = (d: Dev) => d.proc.of('state').filter((l) => l.manifestId === r1.manifestId).map((l) => l.phase);
    assert.deepEqual(phases(byName('clean')), ['download', 'verify', 'install', 'switch', 'health-check', 'commit']);
    assert.deepEqual(phases(byName('sick')), ['download', 'verify', 'install', 'switch', 'health-check', 'rollback']);

    const v1 = sha(readFileSync(img1));
    for (const n of ['clean', 'lossy']) {
      const d = byName(n);
      assert.equal(sha(readFileSync(d.target)), v1, `${n} runs release 1`);
      assert.equal(DeviceState.open(d.stateDir, PRODUCT).installedSequence, 1n, `${n}: anti-rollback state at 1`);
    }
    for (const n of ['sick', 'outside', 'other']) {
      const d = byName(n);
      assert.equal(existsSync(d.target), false, `${n} has nothing installed`);
      assert.equal(DeviceState.open(d.stateDir, PRODUCT).installedSequence, 0n, `${n}: anti-rollback state at 0`);
    }
    assert.ok(readAgentState(byName('sick').stateDir)?.failed.includes(r1.manifestId), 'the release that failed its health check is recorded');

    // The collector saw it all from the devices' signed reports.
    for (const n of ['clean', 'lossy']) {
      const v = await reported(byName(n), (x) => x.state === 'installed' && x.installedVersion === '1.0');
      assert.deepEqual([v.installedSequence, v.pendingVersion, v.lastError, v.from], ['1', null, null, lab.host(n).address]);
    }
    const sickView = await reported(byName('sick'), (x) => x.state === 'rolled-back');
    assert.deepEqual([sickView.installedVersion, sickView.pendingVersion, sickView.pendingSequence], ['', '1.0', '1']);
    assert.match(String(sickView.lastError), /^ERR_HEALTH: /);
    for (const n of ['outside', 'other']) await reported(byName(n), (x) => x.state === 'idle' && x.installedVersion === '');
    const path = (d: Dev) =>
      collector.lines
        .filter((l) => l.type === 'report' && (l.device as JsonLine).deviceId === d.id)
        .map((l) => String((l.device as JsonLine).state))
        .filter((st, i, a) => st !== 'idle' && st !== a[i - 1]);
    assert.deepEqual(path(byName('clean')), ['receiving', 'verifying', 'installing', 'confirming', 'installed']);

    // Release 2 (every sensor), then halted with rollback once installed.
    const r2 = await createRelease({ image: img2, key: keys.signer, product: PRODUCT, sequence: 2n, version: '2.0', out: join(releases, 'r2'), policy: { deviceClasses: ['sensor'] } });
    for (const n of ['clean', 'lossy', 'outside']) assert.equal((await outcome(byName(n), r2.manifestId)).type, 'installed', `${n} installs release 2`);
    assert.equal(sha(readFileSync(byName('clean').target)), sha(readFileSync(img2)));
    writeFileSync(join(releases, 'r2', 'halt'), 'rollback\n');
    for (const n of ['clean', 'lossy', 'outside']) {
      const h = await byName(n).proc.waitFor((l) => l.type === 'halted' && l.manifestId === r2.manifestId, 20_000);
      assert.equal(h.action, 'rolled-back', `${n}: ${String(h.detail)}`);
    }
    for (const n of ['clean', 'lossy']) {
      const d = byName(n);
      assert.equal(sha(readFileSync(d.target)), v1, `${n} runs release 1 again`);
      const s = readAgentState(d.stateDir);
      assert.equal(s?.reverted?.version, '1.0');
      assert.ok(s?.halted?.includes(r2.manifestId));
      // Local recovery only: the anti-rollback state keeps the halted sequence.
      assert.equal(DeviceState.open(d.stateDir, PRODUCT).installedSequence, 2n);
      // Reported: release 1 runs again, release 2 is the one rolled back.
      const v = await reported(d, (x) => x.state === 'rolled-back');
      assert.deepEqual([v.installedVersion, v.installedSequence, v.pendingVersion, v.lastError], ['1.0', '2', '2.0', 'ERR_HALTED: halted by the publisher']);
    }
    assert.equal(existsSync(byName('outside').target), false, 'nothing was installed before release 2 on outside: it is removed');

    // Stats: the flood was refused and counted, and stopped no genuine update.
    for (const d of devs) d.proc.stop();
    pub.stop();
    for (const d of devs) {
      const e = await d.proc.exit;
      assert.equal(e.code, 0, `${d.name} exits 0 on SIGTERM: ${e.stderr}`);
      const final = d.proc.of('stats').pop();
      assert.equal(final?.final, true);
      const refused = final?.refused as Record<string, number>;
      assert.ok(Number(final?.datagrams) > 0 && Number(final?.offers) >= 1, `${d.name} heard the publisher`);
      if (d.name !== 'lossy') {
        assert.ok(Number(refused.malformed) >= 400, `${d.name}: junk refused (${refused.malformed})`);
        assert.ok(Number(refused.forged) + Number(refused.flood) + Number(refused.untrusted) >= 10, `${d.name}: forged beacons refused`);
      }
      assert.equal(d.proc.of('halted').filter((l) => l.manifestId === r1.manifestId).length, 0, `${d.name}: the forged halt was not acted on`);
      assert.deepEqual(d.proc.of('error'), [], `${d.name}: no status reporter errors`);
    }
    assert.equal((await pub.exit).code, 0);
    collectorProc.kill('SIGTERM');
    const { code, stderr, lines: c } = await collector.exited;
    assert.equal(code, 0, stderr);
    assert.deepEqual(c.filter((l) => l.type === 'unknown' || l.type === 'drop'), [], 'every report came from an enrolled key, none was dropped');
    assert.deepEqual(new Set(c.filter((l) => l.type === 'report').map((l) => (l.device as JsonLine).deviceId)), new Set(devs.map((d) => d.id)));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

labTest('agent: a release whose data never comes is given up after the data timeout, offered again after a growing back-off; the daemon keeps listening', { hosts: ['pub', 'dev'], timeout: 60_000 }, async (lab) => {
  const dir = mkdtempSync(join(tmpdir(), 'iotupd-lab-agent-timeout-'));
  try {
    const keys = makeFleetKeys(dir, PRODUCT);
    const releases = join(dir, 'releases');
    mkdirSync(releases);
    writeFileSync(join(dir, 'v1.bin'), randomBytes(50_000));
    const r1 = await createRelease({ image: join(dir, 'v1.bin'), key: keys.signer, product: PRODUCT, sequence: 1n, out: join(releases, 'r1') });
    // Status reports off: the daemon opens no reporter and makes no status key.
    const cfg = writeAgentConfig(join(dir, 'agent.json'), { deviceId: 'd1', product: PRODUCT, trust: [keys.rootPub], stateDir: join(dir, 'state'), target: join(dir, 'firmware.bin'), interface: lab.host('dev').ifname, status: false });
    const dev = spawnAgent(lab, 'dev', cfg);
    const ready = await dev.waitFor((l) => l.type === 'ready', 15_000);
    assert.equal(ready.statusKey, undefined);
    assert.equal(existsSync(join(dir, 'state', 'status-key.key')), false);
    // Announces only: nobody sends the data.
    const pubChild = lab.spawnNode('pub', fileURLToPath(new URL('../../src/cli/main.js', import.meta.url)), ['publish', '--interface', lab.host('pub').ifname, '--key', keys.signerKey, '--releases', releases, '--announce-only', '--interval', '0.5', '--data-timeout', '2', '--json']);
    const g1 = await dev.waitFor((l) => l.type === 'gave-up' && l.manifestId === r1.manifestId, 10_000);
    assert.match(String(g1.reason), /no data for 2 s/);
    assert.equal(g1.retryIn, 2);
    const g2 = await dev.waitFor((l) => l.type === 'gave-up' && l.retryIn === 4, 15_000);
    assert.ok(Number(g2.at) - Number(g1.at) >= 3900, `the second give-up came ${Number(g2.at) - Number(g1.at)} ms after the first (back-off 2 s + data timeout 2 s)`);
    const announced = dev.of('announced').filter((l) => l.manifestId === r1.manifestId);
    assert.equal(announced.length, 2, 'offered once per back-off period, not once per beacon');
    assert.equal(dev.of('state').length, 0, 'no manifest ever arrived: nothing was started');
    assert.equal(existsSync(join(dir, 'firmware.bin')), false);
    dev.stop();
    const e = await dev.exit;
    assert.equal(e.code, 0, e.stderr);
    assert.ok(Number(dev.of('stats').pop()?.repeats) > 0, 'beacons kept coming and were counted as repeats');
    pubChild.kill('SIGTERM');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
