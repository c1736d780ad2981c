import type { Command } from '../command.js';
import { numberOption, parse } from '../command.js';
import { COLLECTOR_OPTIONS, collectorOptions, listenOptions } from '../collector-options.js';
import { UsageError } from '../../errors.js';
import { Collector, type CollectorEvent, type DeviceView, type FleetSummary, type ReleaseView } from '../../fleet/index.js';
import { deviceJson as viewDeviceJson, releaseJson } from '../../fleet/dashboard/view.js';

const usage = `usage: iotupd status --product P [--interface IF] [options]

Listens on the product's status channel (iotupd/P/status) and shows every device that reports:
a live table on a terminal, JSON lines otherwise (or with --json). Reports are verified against
the registry; devices whose key is not enrolled are listed apart as unknown, never trusted.
With --trust, the publisher's STATE beacons on the same channel are verified and each release
is shown as serving or paused (unknown once the publisher is quiet).
Without --interface it shows what the database (--db) holds, without listening; with --follow
it keeps showing it, live, as another collector (iotupd status or dashboard --db FILE) writes it.

  --product P          product whose status channel to join (required)
  --interface IF       interface to listen on
  --db FILE            SQLite database: history, counters and devices survive restarts
                       (default: memory only)
  --registry FILE      enrolled device keys ('iotupd fleet enrol'); default: none (all unknown)
  --trust FILE         the publisher's trust anchor (a public key file the devices pin);
                       repeatable or comma-separated. Without: publisher beacons are dropped
  --follow             with --db and no --interface: follow the database another collector
                       writes (its --registry and --trust decide what is trusted)
  --once               print one snapshot after the listening window and exit
  --listen S           the listening window of --once, seconds (default 10)
  --json               JSON lines: one per event; with --once one snapshot line
  --table              the table even when stdout is not a terminal
  --quiet-after S      seconds without a report before a device is quiet (default: three
                       maximal heartbeat gaps of the budget below)
  --budget-kbit N      the status channel's budget the devices use (default 256)
  --fleet-size N       the fleet size the devices use (default 1000)
  --channel NAME | --group ADDR   another channel than iotupd/P/status
  --port P             UDP port (default 4242)`;

/** A device as the JSON lines show it: the dashboard's form, with the uptime and counter. */
function deviceJson(d: DeviceView): Record<string, unknown> {
  return { ...viewDeviceJson(d), lastSeen: new Date(d.lastSeen).toISOString(), uptime: d.uptime, counter: d.counter.toString() };
}

function eventJson(e: CollectorEvent): Record<string, unknown> {
  switch (e.type) {
    case 'report':
    case 'unknown':
      return { type: e.type, reason: e.report.reason, transition: e.transition, device: deviceJson(e.device) };
    case 'quiet':
      return { type: 'quiet', device: deviceJson(e.device) };
    case 'drop': {
      const o: Record<string, unknown> = { type: 'drop', reason: e.reason, detail: e.detail };
      if (e.deviceId !== undefined) o.deviceId = e.deviceId;
      if (e.from !== undefined) o.from = e.from;
      return o;
    }
    case 'registry':
      return { type: 'registry', enrolled: e.enrolled };
    case 'release':
      return { type: 'release', change: e.change, release: releaseJson(e.release) };
    case 'refresh':
      return { type: 'refresh', changed: e.changed };
  }
}

function snapshotJson(c: Collector, now: number): Record<string, unknown> {
  const all = c.devices(now);
  return {
    type: 'snapshot',
    summary: c.summary(now),
    devices: all.filter((d) => d.trusted).map(deviceJson),
    unknown: all.filter((d) => !d.trusted).map(deviceJson),
    releases: c.releases(now).map(releaseJson),
  };
}

function ago(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  return s < 120 ? `${s}s` : s < 7200 ? `${Math.round(s / 60)}m` : `${Math.round(s / 3600)}h`;
}

function row(cells: string[], widths: number[]): string {
  return cells.map((c, i) => c.padEnd(widths[i] ?? 0)).join('  ').trimEnd();
}

/**
 * Text for a terminal: control characters shown escaped, never sent as such. Device ids, versions
 * and errors come from the devices, reasons from the publisher: none may move the cursor or
 * rewrite the screen.
 */
function printable(text: string): string {
  let out = '';
  for (const c of text) {
    const n = c.charCodeAt(0);
    out += n < 0x20 || (n >= 0x7f && n <= 0x9f) ? `\\u${n.toString(16).padStart(4, '0')}` : c;
  }
  return out;
}

/** One line per release the publisher spoke of: sequence, version, what is shown, reason. */
function formatReleases(releases: ReleaseView[], now: number): string[] {
  const widths = [8, 12, 8];
  return releases.map((r) => {
    const state = r.current === 'unknown' ? `unknown (publisher quiet ${ago(now - r.receivedAt)}; last said ${r.state})` : r.current;
    return row([`#${r.sequence}`, r.version || '?', state, r.reason], widths);
  });
}

/**
 * The table: a summary, then failed, unknown, quiet and ok devices in sections, then the
 * publisher's releases (at most `maxRows` rows).
 */
export function formatTable(s: FleetSummary, devices: DeviceView[], now: number, maxRows = Infinity, releases: ReleaseView[] = []): string {
  const drops = Object.entries(s.drops)
    .filter(([, n]) => n > 0)
    .map(([r, n]) => `${r} ${n}`)
    .join(', ');
  const lines = [
    `product ${s.product}: ${s.trusted} trusted (ok ${s.health.ok}, failed ${s.health.failed}, quiet ${s.health.quiet}), ${s.unknown} unknown; quiet after ${ago(s.quietAfterMs)}`,
    `versions: ${s.versions.map((v) => `${v.version || '(none)'} x${v.count}`).join(', ') || '-'}`,
    `dropped: ${drops || 'none'}`,
  ];
  const widths = [20, 11, 5, 12, 12, 5, 30];
  const header = row(['DEVICE', 'STATE', '%', 'VERSION', 'PENDING', 'SEEN', 'ERROR'], widths);
  const sections: [string, DeviceView[]][] = [
    ['failed', devices.filter((d) => d.trusted && d.health === 'failed')],
    ['unknown keys (not trusted: iotupd fleet approve)', devices.filter((d) => !d.trusted)],
    ['quiet (not heard from)', devices.filter((d) => d.trusted && d.health === 'quiet')],
    ['ok', devices.filter((d) => d.trusted && d.health === 'ok')],
  ];
  let budget = maxRows - lines.length;
  for (const [title, list] of sections) {
    if (list.length === 0) continue;
    if (budget < 3) {
      lines.push(`${title}: ${list.length} more`);
      continue;
    }
    lines.push('', `${title} (${list.length})`, header);
    budget -= 3;
    const shown = list.slice(0, Math.max(0, budget - 1 > list.length ? list.length : budget - 1));
    for (const d of shown) {
      lines.push(
        row(
          [
            d.deviceId,
            d.state,
            d.progress === undefined ? '' : String(Math.round(d.progress * 100)),
            d.installedVersion,
            d.pendingVersion ?? '',
            ago(now - d.lastSeen),
            (d.lastError ?? '').slice(0, 60),
          ],
          widths,
        ),
      );
    }
    budget -= shown.length;
    if (shown.length < list.length) {
      lines.push(`... ${list.length - shown.length} more`);
      budget -= 1;
    }
  }
  if (releases.length > 0) {
    const rel = formatReleases(releases, now);
    if (budget < 3) lines.push(`releases (publisher): ${rel.length}`);
    else {
      lines.push('', `releases (publisher, ${rel.length})`);
      const shown = rel.slice(0, Math.max(1, budget - 3));
      lines.push(...shown);
      if (shown.length < rel.length) lines.push(`... ${rel.length - shown.length} more`);
    }
  }
  return lines.map(printable).join('\n');
}

export const statusCommand: Command = {
  usage,
  async run(argv, signal) {
    const { values: v, positionals } = parse(argv, {
      ...COLLECTOR_OPTIONS,
      once: { type: 'boolean' },
      listen: { type: 'string' },
      json: { type: 'boolean' },
      table: { type: 'boolean' },
      port: { type: 'string' },
    });
    if (positionals.length > 0) throw new UsageError(`unexpected argument '${positionals[0]}'`);
    const opts = collectorOptions(v);
    if (v.interface === undefined && v.listen !== undefined) throw new UsageError('--listen needs --interface');
    const listenS = numberOption('listen', v.listen, 10, 0.1, 86_400);
    const port = numberOption('port', v.port, 4242, 1, 65_535);
    if (!Number.isInteger(port)) throw new UsageError(`--port must be an integer, got '${v.port}'`);
    const c = new Collector(opts);
    if (v.json === true && v.table === true) throw new UsageError('--json and --table exclude each other');
    const json = v.json === true || (v.table !== true && !process.stdout.isTTY);
    const print = (o: Record<string, unknown>): void => void process.stdout.write(`${JSON.stringify(o)}\n`);
    try {
      if (v.follow === true && (v.once === true || v.listen !== undefined)) throw new UsageError('--follow runs until interrupted: without it, --db FILE alone prints one snapshot');
      if (v.interface === undefined && v.follow !== true) {
        c.tick();
        if (json) print(snapshotJson(c, Date.now()));
        else console.log(formatTable(c.summary(), c.devices(), Date.now(), Infinity, c.releases()));
        return 0;
      }
      if (json && !v.once) c.on('event', (e) => print(eventJson(e)));
      if (v.interface === undefined) {
        c.follow({ signal });
        if (json) print({ type: 'following', product: v.product, db: v.db });
      } else {
        const { group } = await c.listen(listenOptions({ ...v, interface: v.interface }, port, signal));
        if (json) print({ type: 'listening', product: v.product, group, port, interface: v.interface });
      }
      const stopped = new Promise<void>((resolve) => {
        if (signal.aborted) resolve();
        signal.addEventListener('abort', () => resolve(), { once: true });
      });
      if (v.once) {
        let window: NodeJS.Timeout | undefined;
        await Promise.race([new Promise((r) => (window = setTimeout(r, listenS * 1000))), stopped]);
        clearTimeout(window);
        c.tick();
        if (json) print(snapshotJson(c, Date.now()));
        else console.log(formatTable(c.summary(), c.devices(), Date.now(), Infinity, c.releases()));
        return 0;
      }
      if (!json) {
        const draw = (): void => {
          const rows = process.stdout.rows ?? 40;
          process.stdout.write(`\x1b[H\x1b[2J${formatTable(c.summary(), c.devices(), Date.now(), rows - 1, c.releases())}\n`);
        };
        draw();
        const timer = setInterval(draw, 1000);
        try {
          await stopped;
        } finally {
          clearInterval(timer);
        }
      } else await stopped;
      return 0;
    } finally {
      await c.close();
    }
  },
};
