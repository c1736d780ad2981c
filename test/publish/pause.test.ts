// Pausing end to end in the network lab: `iotupd publish --registry` hears the agent daemons'
// signed status reports, pauses a release's data once every enrolled device has it (no data on
// the wire, the beacon slower), and resumes it when a device that needs it reports: one that was
// offline and starts with an older version.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DeviceIdentity } from '../../src/fleet/identity.js';
import { Registry } from '../../src/fleet/registry.js';
import { makeFleetKeys, spawnAgent, spawnPublisher, writeAgentConfig, type FleetProcess } from '../../src/lab/fleet.js';
import { labTest, startReceiver, type Lab } from '../../src/lab/index.js';
import { createRelease } from '../../src/publish/create.js';
import { releaseChannel } from '../../src/announce/channels.js';
import { resolveGroup } from '../../src/channel/resolve.js';
import { statusChannel } from '../../src/fleet/channel.js';

const PRODUCT = 'meter';

/** Datagrams on the release's data channel seen from `host` during `ms`. */
async function dataOnWire(lab: Lab, host: string, group: string, port: number, ms: number): Promise<number> {
  const rx = startReceiver(lab, host, ['--group', group, '--port', String(port), '--timeout-ms', String(ms)]);
  await rx.ready;
  return (await rx.done).received;
}

labTest('publish: a release every enrolled device has is paused (no data on the wire) and resumed by a device back from offline', { hosts: ['pub', 'a', 'b', 'late'], timeout: 120_000 }, async (lab) => {
  const dir = mkdtempSync(join(tmpdir(), 'iotupd-lab-pause-'));
  const procs: FleetProcess[] = [];
  try {
    const keys = makeFleetKeys(dir, PRODUCT);
    const releases = join(dir, 'releases');
    mkdirSync(releases);
    const img = join(dir, 'v1.bin');
    writeFileSync(img, randomBytes(150_000));
    const r1 = await createRelease({ image: img, key: keys.signer, product: PRODUCT, sequence: 1n, version: '1.0', out: join(releases, 'r1') });
    const data = releaseChannel(PRODUCT, 1n, new Uint8Array(Buffer.from(r1.manifestId, 'hex')));

    // Each device's status key exists before its agent first starts (DeviceIdentity makes it on
    // first open, as the agent would), so the operator can enrol all three up front.
    const registry = new Registry();
    const configs = new Map<string, string>();
    for (const name of ['a', 'b', 'late']) {
      const d = join(dir, name);
      mkdirSync(d);
      const stateDir = join(d, 'state');
      registry.enrol(`dev-${name}`, DeviceIdentity.open(stateDir).publicKey);
      const cfg = writeAgentConfig(join(d, 'agent.json'), { deviceId: `dev-${name}`, product: PRODUCT, trust: [keys.rootPub], stateDir, target: join(d, 'fw.bin'), interface: lab.host(name).ifname });
      // Heartbeats every ~1.3 s (share period 1 s), so the test need not wait for the default 40 s.
      const c = JSON.parse(readFileSync(cfg, 'utf8')) as Record<string, unknown>;
      c.status = { budget: { minIntervalSeconds: 1 } };
      writeFileSync(cfg, JSON.stringify(c));
      configs.set(name, cfg);
    }
    const regFile = join(dir, 'fleet.registry');
    registry.save(regFile);

    for (const name of ['a', 'b']) procs.push(spawnAgent(lab, name, configs.get(name) as string));
    for (const p of procs) await p.waitFor((l) => l.type === 'ready', 15_000);
    const pub = spawnPublisher(lab, 'pub', {
      signerKey: keys.signerKey,
      releases,
      rateMbit: 20,
      args: ['--registry', regFile, '--quiet-after', '5', '--grace', '3', '--hold', '1', '--paused-interval', '1'],
    });
    procs.push(pub);
    const [a, b] = procs as [FleetProcess, FleetProcess];
    await a.waitFor((l) => l.type === 'installed', 30_000);
    await b.waitFor((l) => l.type === 'installed', 30_000);

    const paused = await pub.waitFor((l) => l.type === 'paused', 20_000);
    assert.equal(paused.sequence, '1');
    assert.match(String(paused.reason), /^none of the 2 devices heard needs it \(2 have it\)$/);
    assert.deepEqual(paused.demand, { live: 2, needing: 0, received: 2, waiting: 0, outside: 0, gaveUp: 0 });
    // Paused: nothing on the data channel, while the announcement goes on.
    const beaconsBefore = pub.of('beacon').filter((l) => l.kind === 'announce').length;
    assert.equal(await dataOnWire(lab, 'late', data.group, data.port, 2500), 0, 'no data while paused');
    assert.ok(pub.of('beacon').filter((l) => l.kind === 'announce').length > beaconsBefore, 'the release is still announced');
    // STATE beacons go to the product's status channel, where collectors listen (the demo test
    // checks that a collector verifies them and shows the release paused).
    const states = pub.of('beacon').filter((l) => l.kind === 'state');
    assert.ok(states.length > 0, 'STATE beacons are sent');
    assert.ok(states.every((l) => l.group === resolveGroup({ channel: statusChannel(PRODUCT) })), JSON.stringify(states[0]));

    // The third device comes online with nothing installed: its first report resumes the data.
    const late = spawnAgent(lab, 'late', configs.get('late') as string);
    procs.push(late);
    const resumed = await pub.waitFor((l) => l.type === 'resumed', 20_000);
    assert.match(String(resumed.reason), /^1 of 3 devices heard need it/);
    await late.waitFor((l) => l.type === 'installed', 30_000);
    assert.deepEqual(readFileSync(join(dir, 'late', 'fw.bin')), readFileSync(img));
    // Everyone has it again: paused a second time.
    await pub.waitFor((l) => l.type === 'paused' && l !== paused, 20_000);
    assert.equal(pub.of('paused').length, 2);
    assert.equal(pub.of('resumed').length, 1);
  } finally {
    for (const p of procs) p.stop();
    await Promise.all(procs.map((p) => p.exit));
    rmSync(dir, { recursive: true, force: true });
  }
});
