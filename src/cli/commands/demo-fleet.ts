// `iotupd demo` (npm run demo): the fleet story. A private lab LAN with a publisher and five
// devices running the agent daemon (`iotupd agent --config F`): one on a link with 10 % loss, one
// that joins late, one whose health check fails (it rolls back), one outside the rollout share,
// one of another device class. Keys and a signed release are made first through the library
// (src/lab/fleet.ts, src/publish/create.ts). The devices report their state by signed multicast:
// an operator host runs `iotupd status`, whose live table the demo shows (on a terminal, redrawn
// above the event log), and the publisher, hearing the same reports, pauses the release once no
// device needs it. A summary table ends it. The lab is removed afterwards, also on failure or
// Ctrl-C.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { blake3 } from '@noble/hashes/blake3.js';
import { LabError, abortError } from '../../errors.js';
import { Lab, type JsonLine } from '../../lab/index.js';
import { deviceIds, makeFleetKeys, spawnAgent, spawnPublisher, writeAgentConfig, type FleetProcess } from '../../lab/fleet.js';
import { createRelease } from '../../publish/create.js';
import { existsSync } from 'node:fs';
import { Collector, Dashboard, DEFAULT_DASHBOARD_PORT, DeviceIdentity, Registry, type DashboardAddress } from '../../fleet/index.js';
import { formatBytes } from '../progress.js';
import { CLI_MAIN } from '../../lab/fleet.js';

/** What `iotupd status` writes before each redraw of its live table. */
const CLEAR = '\x1b[H\x1b[2J';
/**
 * The devices' status budget in the demo: a fleet of five sharing the default 256 kbit/s gets the
 * 2 s floor of the share period, so a change shows within seconds (docs/fleet-status.md "Rate budget").
 */
const STATUS = { budget: { minIntervalSeconds: 2, fleetSize: 5 } } as const;
/** The collectors' quiet time and the publisher's pause timing, to match. */
const QUIET_AFTER_S = 12;

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
  /** Draw the live table above the event log (a terminal); else print events, then the final table. */
  live?: boolean;
  /** Keep the fleet and the dashboard running after the story until interrupted. */
  keep?: boolean;
  /** The dashboard's port on 127.0.0.1 (default 8421; any free port when that one is taken). */
  dashboardPort?: number;
}

/**
 * The operator's web page, on this machine's loopback: a viewer of the database `iotupd status`
 * writes in the lab (the lab's namespaces cannot be reached from here, their database can).
 */
async function openDashboard(product: string, db: string, port: number, signal: AbortSignal): Promise<{ viewer: Collector; dash: Dashboard; address: DashboardAddress }> {
  for (let i = 0; i < 100 && !existsSync(db); i++) await new Promise((r) => setTimeout(r, 50));
  const viewer = new Collector({ product, db, view: true, quietAfterMs: QUIET_AFTER_S * 1000 });
  viewer.follow({ signal, intervalMs: 500 });
  try {
    const dash = new Dashboard({ collector: viewer, bind: '127.0.0.1', port });
    return { viewer, dash, address: await dash.listen({ signal }) };
  } catch {
    // Taken (another demo, a dashboard of your own): any free port.
    const dash = new Dashboard({ collector: viewer, bind: '127.0.0.1', port: 0 });
    return { viewer, dash, address: await dash.listen({ signal }) };
  }
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

/** The latest complete frame of `iotupd status`'s live table, from its output stream. */
class TableFrames {
  #buf = '';
  latest = '';
  push(chunk: string): boolean {
    this.#buf += chunk;
    const parts = this.#buf.split(CLEAR);
    // parts[0] precedes the first redraw; a frame is complete once it ends with a newline.
    const tail = parts[parts.length - 1] as string;
    const done = tail.endsWith('\n') ? tail : parts.length > 2 ? (parts[parts.length - 2] as string) : undefined;
    this.#buf = CLEAR + tail;
    if (done === undefined || done === this.latest) return false;
    this.latest = done.trimEnd();
    return true;
  }
}

export async function runFleetDemo(o: FleetDemoOptions, signal: AbortSignal): Promise<number> {
  let live = o.live ?? false;
  const log: string[] = [];
  const frames = new TableFrames();
  let screenTop: string[] = [];
  const draw = (): void => {
    const rows = process.stdout.rows ?? 40;
    const table = frames.latest ? frames.latest.split('\n') : ['(waiting for the first status reports)'];
    const room = Math.max(3, rows - screenTop.length - table.length - 3);
    process.stdout.write(`${CLEAR}${[...screenTop, '', ...table, '', ...log.slice(-room)].join('\n')}\n`);
  };
  const say = (s: string): void => {
    if (!live) {
      process.stdout.write(s + '\n');
      return;
    }
    log.push(s);
    draw();
  };
  const dir = mkdtempSync(join(tmpdir(), 'iotupd-demo-'));
  let lab: Lab | undefined;
  let closeWeb: (() => Promise<void>) | undefined;
  let webUrl = '';
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

    lab = await Lab.create({ hosts: ['publisher', 'ops', ...devices.map((d) => d.name)] });
    if (signal.aborted) throw abortError(signal);
    const theLab = lab;
    say(`lab ${lab.id}: publisher, ops + ${devices.map((d) => d.name).join(', ')} on bridge ${lab.bridge}`);
    if (o.loss > 0) await lab.impair('lossy', { lossPercent: o.loss });

    // Each device's status key is made before its agent first starts (the agent would make it),
    // so the operator enrols the whole fleet up front: only enrolled keys are trusted.
    const registry = new Registry();
    for (const d of devices) registry.enrol(d.id, DeviceIdentity.open(join(dir, d.name, 'state')).publicKey);
    const registryFile = join(dir, 'fleet.registry');
    registry.save(registryFile);
    const db = join(dir, 'fleet.db');
    // The operator's live table: `iotupd status` on its own host, hearing the devices' reports.
    const status = theLab.spawnNode('ops', CLI_MAIN, ['status', '--product', PRODUCT, '--interface', theLab.host('ops').ifname, '--registry', registryFile, '--db', db, '--trust', keys.rootPub, '--table', '--quiet-after', String(QUIET_AFTER_S)]);
    status.stdout?.setEncoding('utf8');
    status.stdout?.on('data', (chunk: string) => {
      if (frames.push(chunk) && live) draw();
    });
    let statusErr = '';
    status.stderr?.on('data', (c: Buffer) => (statusErr = (statusErr + c.toString()).slice(-2000)));
    const statusExit = new Promise<void>((resolve) => status.once('exit', () => resolve()));
    const web = await openDashboard(PRODUCT, db, o.dashboardPort ?? DEFAULT_DASHBOARD_PORT, signal);
    webUrl = web.address.url;
    closeWeb = async () => {
      await web.dash.close();
      await web.viewer.close();
    };
    screenTop = [
      `iotupd demo: product '${PRODUCT}', release 2.0 to five devices; fleet status from 'iotupd status' on host ops`,
      `  (its live table below, from the devices' signed status reports; the event log under it)`,
      `  web dashboard: ${web.address.url}  (open it in a browser; npm run demo -- --keep leaves it running)`,
    ];
    say(`dashboard: ${web.address.url} (the fleet live in a browser, from the same reports)`);

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
        status: STATUS,
      });
      const proc = spawnAgent(theLab, d.name, cfg, (l) => show(d, l), 60);
      d.proc = proc;
      void proc.exit.then(() => (d.gone = true));
      return proc;
    };
    const early = devices.filter((d) => !d.late);
    await Promise.all(early.map((d) => start(d).waitFor((l) => l.type === 'ready', 15_000)));
    const pub = spawnPublisher(
      lab,
      'publisher',
      { signerKey: keys.signerKey, releases, rateMbit: o.rate, interval: 1, args: ['--registry', registryFile, '--quiet-after', String(QUIET_AFTER_S), '--grace', '6', '--hold', '2'] },
      (l) => {
        if (l.type === 'paused' || l.type === 'resumed') say(`${at()} publisher ${String(l.type).toUpperCase()} ${String(l.version)}: ${String(l.reason)}`);
      },
    );
    await pub.waitFor((l) => l.type === 'release-added', 15_000);
    say(`${at()} publisher announcing 2.0 on the announce channel, data at ${o.rate} Mbit/s; it hears the fleet too`);

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
    // Nobody needs 2.0 any more: the publisher, hearing the same reports, pauses its data.
    const paused = await pub.waitFor((l) => l.type === 'paused' && l.manifestId === rel.manifestId, 30_000).catch(() => undefined);
    // The table shows each device's final state once its last change report is through the rate budget.
    const finalState = (d: DemoDevice): string => (d.expect === 'skipped' ? 'idle' : d.expect);
    const settled = (): boolean => {
      const lines = frames.latest.split('\n');
      return devices.every((d) => lines.some((l) => l.startsWith(`${d.id} `) && l.split(/\s+/)[1] === finalState(d))) && lines.some((l) => /^#2 +2\.0 +paused /.test(l));
    };
    const settleBy = performance.now() + 20_000;
    while (!settled() && performance.now() < settleBy && !signal.aborted) await new Promise((r) => setTimeout(r, 200));
    const table = frames.latest;
    const stopFleet = async (): Promise<void> => {
      for (const d of devices) d.proc?.stop();
      pub.stop();
      status.kill('SIGTERM');
      await Promise.all([...devices.map((d) => d.proc?.exit), pub.exit, statusExit]);
    };
    if (!o.keep) await stopFleet();

    if (live) {
      // The story is over: the whole event log once, then plain lines (the table follows below).
      process.stdout.write(`${CLEAR}${log.join('\n')}\n`);
      live = false;
    }
    say('');
    say(`fleet status ('iotupd status', from the devices' signed reports):`);
    if (table) for (const line of table.split('\n')) say(`  ${line}`);
    else say(`  (no table: iotupd status ${statusErr.trim().split('\n').pop() ?? 'printed nothing'})`);
    say(paused ? `publisher paused 2.0: ${String(paused.reason)}` : 'publisher did NOT pause 2.0 within 30 s');
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
    const tableOk = settled();
    // The agents print their announce filter's counts as they exit.
    const filterCounts = (): void => {
      const stats = devices.map((d) => d.proc?.of('stats').pop()).filter((s) => s !== undefined);
      const refused = stats.reduce((n, s) => n + Object.values(s.refused as Record<string, number>).reduce((a, b) => a + b, 0), 0);
      say(`announce filter: ${stats.reduce((n, s) => n + Number(s.datagrams), 0)} beacons heard by the fleet, ${refused} refused`);
    };
    if (!o.keep) filterCounts();
    say(wrong.length === 0 ? 'fleet as expected: 2 updated, 1 rolled back, 2 skipped' : `UNEXPECTED: ${wrong.map((d) => `${d.name} ${String(d.outcome?.type)} (expected ${d.expect})`).join(', ')}`);
    if (!tableOk) say(`UNEXPECTED: the status table does not show every device's final state and 2.0 paused`);
    if (!paused) say('UNEXPECTED: the publisher went on sending 2.0 that no device needs');
    if (o.keep) {
      say(`--keep: the fleet goes on reporting and the dashboard stays at ${webUrl}; Ctrl-C ends the demo.`);
      await new Promise<void>((resolve) => (signal.aborted ? resolve() : signal.addEventListener('abort', () => resolve(), { once: true })));
      await stopFleet();
      filterCounts();
    }
    return wrong.length === 0 && tableOk && paused ? 0 : 1;
  } finally {
    signal.removeEventListener('abort', onAbort);
    await closeWeb?.();
    await lab?.destroy();
    rmSync(dir, { recursive: true, force: true });
    if (lab) say(`lab ${lab.id} removed`);
  }
}
