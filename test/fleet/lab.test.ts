// Fleet status over real multicast between real processes in the network lab (src/lab): three
// reporter processes and a forger on their own hosts, `iotupd status --once --json` on another.
import assert from 'node:assert/strict';
import { spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { JsonLines, labTest, type Lab } from '../../src/lab/index.js';
import { DeviceIdentity } from '../../src/fleet/identity.js';

const here = fileURLToPath(new URL('.', import.meta.url));
const MAIN = join(here, '..', '..', 'src', 'cli', 'main.js');
const CHILD = join(here, 'reporter-child.js');
const PRODUCT = 'labsensor';

function reporter(lab: Lab, host: string, stateDir: string, args: string[]): { child: ChildProcess; out: JsonLines } {
  const h = lab.host(host);
  const child = lab.spawnNode(h, CHILD, ['--interface', h.ifname, '--state-dir', stateDir, '--product', PRODUCT, ...args]);
  return { child, out: new JsonLines(child, { name: host }) };
}

labTest('three devices and a forger report over multicast; status shows trusted, failed, unknown, and counts the forgery', { hosts: ['collector', 'd1', 'd2', 'd3', 'forger'], timeout: 60_000 }, async (lab) => {
  const dir = mkdtempSync(join(tmpdir(), 'iotupd-lab-fleet-'));
  try {
    const registry = join(dir, 'registry.txt');
    const db = join(dir, 'fleet.db');
    // d1 and d2 are enrolled with the keys their state dirs hold; d3 is not (unknown).
    for (const d of ['d1', 'd2']) {
      const id = DeviceIdentity.open(join(dir, d));
      const r = spawnSync(process.execPath, [MAIN, 'fleet', 'enrol', '--registry', registry, '--device-id', `dev-${d}`, '--key', id.publicKeyFile], { encoding: 'utf8' });
      assert.equal(r.status, 0, r.stderr);
    }
    const c = lab.host('collector');
    const status = lab.spawnNode(c, MAIN, ['status', '--product', PRODUCT, '--interface', c.ifname, '--once', '--json', '--listen', '5', '--db', db, '--registry', registry]);
    const out = new JsonLines(status, { name: 'collector' });
    const listening = await out.waitFor((o) => o.type === 'listening', 15_000);
    assert.match(String(listening.group), /^ff1e:/);
    const devs = [
      reporter(lab, 'd1', join(dir, 'd1'), ['--device-id', 'dev-d1', '--state', 'installing', '--version', '1.0.0', '--then', 'installed', '--then-version', '2.0.0', '--after-ms', '1500']),
      reporter(lab, 'd2', join(dir, 'd2'), ['--device-id', 'dev-d2', '--state', 'failed', '--version', '1.0.0', '--error', 'verify: digest mismatch']),
      reporter(lab, 'd3', join(dir, 'd3'), ['--device-id', 'dev-d3', '--state', 'idle', '--version', '1.0.0']),
      // The forger holds its own key and claims to be dev-d1.
      reporter(lab, 'forger', join(dir, 'forger'), ['--device-id', 'dev-d1', '--state', 'failed', '--version', '6.6.6']),
    ];
    for (const d of devs) await d.out.waitFor((o) => o.event === 'ready', 15_000);
    const { code, stderr, lines } = await out.exited;
    assert.equal(code, 0, stderr);
    // Interrupted during its window, --once still prints the snapshot of what it heard.
    const second = lab.spawnNode(c, MAIN, ['status', '--product', PRODUCT, '--interface', c.ifname, '--once', '--json', '--listen', '60', '--registry', registry]);
    const out2 = new JsonLines(second, { name: 'collector-2' });
    await out2.waitFor((o) => o.type === 'listening', 15_000);
    await new Promise((r) => setTimeout(r, 1500));
    second.kill('SIGINT');
    const ended = await out2.exited;
    assert.equal(ended.code, 0, ended.stderr);
    const snap2 = ended.lines.find((o) => o.type === 'snapshot') as { devices: { deviceId: string }[] } | undefined;
    assert.ok(snap2 && snap2.devices.some((d) => d.deviceId === 'dev-d1'), JSON.stringify(snap2));
    for (const d of devs) d.child.kill('SIGTERM');
    const snap = lines.find((o) => o.type === 'snapshot') as
      | { summary: { trusted: number; unknown: number; drops: Record<string, number> }; devices: Record<string, unknown>[]; unknown: Record<string, unknown>[] }
      | undefined;
    assert.ok(snap, 'snapshot line');
    const byId = new Map(snap.devices.map((d) => [d.deviceId, d]));
    assert.deepEqual([...byId.keys()].sort(), ['dev-d1', 'dev-d2']);
    // d1's change went out and arrived; the forger's claim did not replace it.
    assert.equal(byId.get('dev-d1')?.state, 'installed');
    assert.equal(byId.get('dev-d1')?.installedVersion, '2.0.0');
    assert.equal(byId.get('dev-d1')?.from, lab.host('d1').address);
    assert.ok(Number(byId.get('dev-d1')?.reports) >= 3, `dev-d1 reports ${String(byId.get('dev-d1')?.reports)}`);
    assert.equal(byId.get('dev-d2')?.health, 'failed');
    assert.equal(byId.get('dev-d2')?.lastError, 'verify: digest mismatch');
    assert.deepEqual(
      snap.unknown.map((d) => [d.deviceId, d.trusted]),
      [['dev-d3', false]],
    );
    assert.ok(Number(snap.summary.drops.forged) >= 1, `forged ${String(snap.summary.drops.forged)}`);
    assert.equal(snap.summary.drops.signature, 0);
    assert.equal(snap.summary.drops.malformed, 0);
    assert.equal(snap.summary.trusted, 2);
    assert.equal(snap.summary.unknown, 1);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
