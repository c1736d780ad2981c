// `iotupd demo` (npm run demo): the fleet story. A private lab LAN with a publisher and five
// devices running the agent daemon (`iotupd agent --config F`): one on a link with 10 % loss, one
// that joins late, one whose health check fails (it rolls back), one outside the rollout share,
// one of another device class. Keys and a signed release are made first through the library
// (src/lab/fleet.ts, src/publish/create.ts). Every device's path through the states is shown as it
// happens; a summary table ends it. The lab is removed afterwards, also on failure or Ctrl-C.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { blake3 } from '@noble/hashes/blake3.js';
import { LabError, abortError } from '../../errors.js';
import { Lab, type JsonLine } from '../../lab/index.js';
import { deviceIds, makeFleetKeys, spawnAgent, spawnPublisher, writeAgentConfig, type FleetProcess } from '../../lab/fleet.js';
import { createRelease } from '../../publish/create.js';
import { formatBytes } from '../progress.js';

const PRODUCT = 'thermostat';

export interface FleetDemoOptions {
  /** Image size in bytes. */
  size: number;
  /** Publisher data rate, Mbit/s. */
  rate: number;
  /** Loss on the lossy device's link, %. */
  loss: number;
  /** Rollout share, %. */
  rollout: number;
  timeoutS: number;
}

interface DemoDevice {
  name: string;
  link: string;
  cls: string;
  /** What the story expects of it. */
  expect: 'installed' | 'rolled-back' | 'skipped';
  id: string;
  health?: string;
  late?: boolean;
  proc?: FleetProcess;
  outcome?: JsonLine;
  gone?: boolean;
}

function summaryRow(cols: string[], widths: number[]): string {
  return cols.map((c, i) => c.padEnd(widths[i] ?? 0)).join('  ').trimEnd();
}

export async function runFleetDemo(o: FleetDemoOptions, signal: AbortSignal): Promise<number> {
  const say = (s: string): void => void process.stdout.write(s + '\n');
  const dir = mkdtempSync(join(tmpdir(), 'iotupd-demo-'));
  let lab: Lab | undefined;
  const onAbort = (): void => lab?.destroySync();
  signal.addEventListener('abort', onAbort, { once: true });
  const t0 = performance.now();
  const at = () => `[${((performance.now() - t0) / 1000).toFixed(1).padStart(5)} s]`;
  try {
    // 1. Keys and a signed release, through the library.
    const keys = makeFleetKeys(dir, PRODUCT);
    const releases = join(dir, 'releases');
    mkdirSync(releases);
    const image = join(dir, 'firmware-2.0.bin');
    writeFileSync(image, blake3(new TextEncoder().encode('iotupd fleet demo'), { dkLen: o.size }));
    const bp = Math.round(o.rollout * 100);
    const rel = await createRelease({ image, key: keys.signer, product: PRODUCT, sequence: 2n, version: '2.0', out: join(releases, '2.0'), policy: { rolloutBasisPoints: bp, deviceClasses: ['thermostat'] } });
    say(`iotupd demo: product '${PRODUCT}', release 2.0 (sequence 2, ${formatBytes(rel.size)}, manifest ${rel.manifestId.slice(0, 16)}...)`);
    say(`  signed by a key the devices' root delegates; policy: device class 'thermostat', rollout ${o.rollout} %`);

    const inside = deviceIds('thermo', PRODUCT, 2n, bp, true, 4);
    const [outside] = deviceIds('thermo', PRODUCT, 2n, bp, false, 1);
    const devices: DemoDevice[] = [
      { name: 'lossy', link: `${o.loss} % loss`, cls: 'thermostat', expect: 'installed', id: inside[0] as string },
      { name: 'late', link: 'joins late', cls: 'thermostat', expect: 'installed', id: inside[1] as string, late: true },
      { name: 'sick', link: 'clean', cls: 'thermostat', expect: 'rolled-back', id: inside[2] as string, health: 'echo "sensor self-test failed" >&2; exit 1' },
      { name: 'outside', link: 'clean', cls: 'thermostat', expect: 'skipped', id: outside as string },
      { name: 'gateway', link: 'clean', cls: 'gateway', expect: 'skipped', id: inside[3] as string },
    ];

    lab = await Lab.create({ hosts: ['publisher', ...devices.map((d) => d.name)] });
    if (signal.aborted) throw abortError(signal);
    const theLab = lab;
    say(`lab ${lab.id}: publisher + ${devices.map((d) => d.name).join(', ')} on bridge ${lab.bridge}`);
    if (o.loss > 0) await lab.impair('lossy', { lossPercent: o.loss });

    const show = (d: DemoDevice, l: JsonLine): void => {
      const rel2 = l.version !== undefined ? ` ${String(l.version)}` : '';
      let text: string | undefined;
      switch (l.type) {
        case 'ready':
          text = `agent listening (installed: ${String(l.installedVersion ?? 'none')})`;
          break;
        case 'state':
          if (l.phase !== 'idle') text = `state ${String(l.phase)}${rel2}`;
          break;
        case 'installed':
          text = `INSTALLED${rel2}`;
          break;
        case 'rolled-back':
          text = `ROLLED BACK${rel2}: ${String(l.reason ?? '')}`;
          break;
        case 'failed':
          text = `FAILED${rel2}: ${String(l.reason ?? '')}`;
          break;
        case 'skipped':
          text = `skipped${rel2}: ${String(l.reason)} (${String(l.detail)})`;
          break;
        case 'gave-up':
          text = `gave up${rel2}: ${String(l.reason)}`;
          break;
      }
      if (text) say(`${at()} ${d.name.padEnd(8)} ${text}`);
      if (['installed', 'rolled-back', 'failed', 'skipped'].includes(String(l.type)) && l.manifestId === rel.manifestId) d.outcome = l;
    };
    const start = (d: DemoDevice): FleetProcess => {
      const dd = join(dir, d.name);
      mkdirSync(dd, { recursive: true });
      const cfg = writeAgentConfig(join(dd, 'agent.json'), {
        deviceId: d.id,
        product: PRODUCT,
        deviceClass: d.cls,
        trust: [keys.rootPub],
        stateDir: join(dd, 'state'),
        target: join(dd, 'firmware.bin'),
        interface: theLab.host(d.name).ifname,
        ...(d.health ? { healthCheck: d.health } : {}),
      });
      const proc = spawnAgent(theLab, d.name, cfg, (l) => show(d, l), 60);
      d.proc = proc;
      void proc.exit.then(() => (d.gone = true));
      return proc;
    };
    const early = devices.filter((d) => !d.late);
    await Promise.all(early.map((d) => start(d).waitFor((l) => l.type === 'ready', 15_000)));
    const pub = spawnPublisher(lab, 'publisher', { signerKey: keys.signerKey, releases, rateMbit: o.rate, interval: 1 });
    await pub.waitFor((l) => l.type === 'release-added', 15_000);
    say(`${at()} publisher announcing 2.0 on the announce channel, data at ${o.rate} Mbit/s`);

    const deadline = performance.now() + o.timeoutS * 1000;
    const until = async (pred: () => boolean): Promise<void> => {
      while (!pred()) {
        if (signal.aborted) throw abortError(signal);
        if (performance.now() > deadline) throw new LabError(`the fleet did not settle within ${o.timeoutS} s`, 'ERR_DEMO_TIMEOUT');
        const died = devices.find((d) => d.gone && d.outcome === undefined);
        if (died) throw new LabError(`${died.name}: ${died.proc?.out.stderr.trim().split('\n').pop() ?? ''}`, 'ERR_DEMO_DEVICE');
        await new Promise((r) => setTimeout(r, 100));
      }
    };
    // The late device starts once the first device has its update.
    await until(() => devices.some((d) => d.outcome?.type === 'installed'));
    for (const d of devices.filter((x) => x.late)) {
      say(`${at()} ${d.name.padEnd(8)} powered on late`);
      start(d);
    }
    await until(() => devices.every((d) => d.outcome !== undefined));
    for (const d of devices) d.proc?.stop();
    pub.stop();
    await Promise.all([...devices.map((d) => d.proc?.exit), pub.exit]);

    say('');
    say('summary:');
    const rows = devices.map((d) => {
      const out = d.outcome as JsonLine;
      const result = out.type === 'installed' ? 'updated' : out.type === 'rolled-back' ? 'rolled back' : out.type === 'skipped' ? 'skipped' : String(out.type);
      const why = out.type === 'installed' ? '' : out.type === 'skipped' ? `${String(out.reason)}: ${String(out.detail)}` : String(out.reason ?? out.code ?? '');
      const running = out.type === 'installed' ? String(out.version) : 'none';
      return [d.name, d.link, d.cls, result, running, why];
    });
    const header = ['device', 'link', 'class', 'result', 'running', 'why'];
    const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] as string).length)));
    say(`  ${summaryRow(header, widths)}`);
    for (const r of rows) say(`  ${summaryRow(r, widths)}`);
    const wrong = devices.filter((d) => d.outcome?.type !== d.expect);
    const stats = devices.map((d) => d.proc?.of('stats').pop()).filter((s) => s !== undefined);
    const refused = stats.reduce((n, s) => n + Object.values(s.refused as Record<string, number>).reduce((a, b) => a + b, 0), 0);
    say(`announce filter: ${stats.reduce((n, s) => n + Number(s.datagrams), 0)} beacons heard by the fleet, ${refused} refused`);
    say(wrong.length === 0 ? 'fleet as expected: 2 updated, 1 rolled back, 2 skipped' : `UNEXPECTED: ${wrong.map((d) => `${d.name} ${String(d.outcome?.type)} (expected ${d.expect})`).join(', ')}`);
    return wrong.length === 0 ? 0 : 1;
  } finally {
    signal.removeEventListener('abort', onAbort);
    await lab?.destroy();
    rmSync(dir, { recursive: true, force: true });
    if (lab) say(`lab ${lab.id} removed`);
  }
}
