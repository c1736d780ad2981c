import type { Command } from '../command.js';
import { numberOption, parse } from '../command.js';
import { COLLECTOR_OPTIONS, collectorOptions, listenOptions } from '../collector-options.js';
import { UsageError } from '../../errors.js';
import { Collector, Dashboard, DEFAULT_DASHBOARD_PORT, checkDashboardOptions, generateToken, isLoopback } from '../../fleet/index.js';

const usage = `usage: iotupd dashboard --product P --interface IF [options]

Serves a web page with the fleet live: versions, each release's rollout (with the publisher's
word on it: serving or paused), failed and quiet devices, unknown (not enrolled) keys, and any
device's history. It listens on the product's status channel like 'iotupd status'; without
--interface it shows what --db holds.

  --product P          product whose status channel to join (required)
  --interface IF       interface to listen on for status reports
  --port N             HTTP port (default ${DEFAULT_DASHBOARD_PORT}; 0: any free port)
  --bind ADDR          HTTP address (default 127.0.0.1). Any other than loopback needs a token:
                       --token, or one is generated and printed
  --token T            required on every request (?token=T, or header x-iotupd-token /
                       authorization: Bearer T); 16+ characters of A-Z a-z 0-9 _ ~ . -
  --db FILE            SQLite database (the collector's; a restarted dashboard shows it at once)
  --follow             with --db and no --interface: show, live, the database another collector
                       writes ('iotupd status --db FILE'); its --registry and --trust decide trust
  --registry FILE      enrolled device keys ('iotupd fleet enrol'); default: none (all unknown)
  --trust FILE         the publisher's trust anchor (a public key file the devices pin),
                       repeatable or comma-separated: its STATE beacons show each release as
                       serving or paused. Without: publisher beacons are dropped
  --json               print the listening line as JSON ({"type":"listening","url":...})
  --quiet-after S, --budget-kbit N, --fleet-size N, --channel NAME | --group ADDR, --port-status P
                       as for 'iotupd status' (--port-status: the status channel's UDP port)`;

export const dashboardCommand: Command = {
  usage,
  async run(argv, signal) {
    const { values: v, positionals } = parse(argv, {
      ...COLLECTOR_OPTIONS,
      port: { type: 'string' },
      bind: { type: 'string' },
      token: { type: 'string' },
      json: { type: 'boolean' },
      'port-status': { type: 'string' },
    });
    if (positionals.length > 0) throw new UsageError(`unexpected argument '${positionals[0]}'`);
    if (v.product === undefined) throw new UsageError('--product P is required');
    const port = numberOption('port', v.port, DEFAULT_DASHBOARD_PORT, 0, 65_535);
    if (!Number.isInteger(port)) throw new UsageError(`--port must be an integer, got '${v.port}'`);
    const statusPort = numberOption('port-status', v['port-status'], 4242, 1, 65_535);
    if (!Number.isInteger(statusPort)) throw new UsageError(`--port-status must be an integer, got '${v['port-status']}'`);
    const bind = v.bind ?? '127.0.0.1';
    // Off loopback a token is mandatory; when none is given one is made and printed below.
    const token = v.token ?? (isLoopback(bind) ? undefined : generateToken());
    const listenOpts = token === undefined ? { bind, port } : { bind, port, token };
    checkDashboardOptions(listenOpts);
    const opts = collectorOptions(v);
    const collector = new Collector(opts);
    try {
      const dash = new Dashboard({ collector, ...listenOpts });
      let group: string | undefined;
      if (v.interface !== undefined) {
        group = (await collector.listen(listenOptions({ ...v, interface: v.interface }, statusPort, signal))).group;
      } else if (v.follow === true) collector.follow({ signal });
      else collector.tick();
      const addr = await dash.listen({ signal });
      if (v.json === true) {
        process.stdout.write(`${JSON.stringify({ type: 'listening', url: addr.url, address: addr.address, port: addr.port, token: token ?? null, generatedToken: token !== undefined && v.token === undefined, group: group ?? null, interface: v.interface ?? null })}\n`);
      } else {
        console.log(`iotupd dashboard: ${addr.url}`);
        if (token !== undefined && v.token === undefined) console.log(`token (generated): ${token}`);
      }
      await new Promise<void>((resolve) => {
        if (signal.aborted) resolve();
        signal.addEventListener('abort', () => resolve(), { once: true });
      });
      await dash.close();
      return 0;
    } finally {
      await collector.close();
    }
  },
};
