import { SCOPES, type Scope } from '../../channel/naming.js';
import { loadGroupKey, loadPublicKey, loadSigningKey, TrustStore } from '../../crypto/index.js';
import { UsageError } from '../../errors.js';
import { existsSync } from 'node:fs';
import { Publisher, type DemandOptions, type PublisherEvent } from '../../publish/publisher.js';
import { fountainServer } from '../../publish/serve.js';
import { numberOption, parse, type Command } from '../command.js';

const usage = `usage: iotupd publish --interface IF --key SIGNER.key (--releases DIR | --config FILE)
                      [--trust ROOT.pub ...] [--announce-only] [options] [--json]

Serves releases (made by 'iotupd release create') until interrupted: announces each on its
product's announce channel with signed beacons, sends HALTs for halted ones, serves their data.
Reloads on SIGHUP, and on any change under --releases DIR.
  --releases DIR      a directory of release directories (DIR/NAME/{manifest,image[,halt]})
  --config FILE       JSON: { "releases": [ { "manifest": P, "image": P, "halt"?: "stop"|"rollback" } ] }
  --key FILE          signs the beacons; devices' roots must delegate it for each product
  --trust FILE        verify each manifest against these roots before announcing it (repeatable)
  --announce-only     do not serve data (another process sends it, e.g. 'iotupd send')
  --rate MBIT         each release's data, Mbit/s on the wire (default 20)
  --group-key FILE    the group key of encrypted or tagged releases
  --interval SEC      seconds between beacons of one release (default 5)
  --max-rate N        beacons per second in total, at most (default 10)
  --lifetime SEC      seconds each beacon stays valid (default 600)
  --data-timeout SEC  seconds without data after which devices give up on a release (default 60)
  --scope link|site|org|global   --port N   --ssm     channel placement (as 'iotupd channel')
  --json              JSON lines on stdout (default when stdout is not a terminal)
Pausing (docs/publish.md "Pausing"): with --registry, the publisher listens to the devices' status
reports and pauses the data of a release no enrolled device heard recently still needs; its
beacon goes on every --paused-interval seconds, and a device that needs it resumes it.
  --registry FILE     enrolled devices ('iotupd fleet enrol'); only their reports count
  --budget-kbit K --fleet-size N   the devices' status budget (sets when a device is quiet)
  --quiet-after SEC   devices not heard for this long do not count (default from the budget)
  --grace SEC         listen this long before pausing anything (default: the quiet time)
  --hold SEC          pause once nobody has needed a release for this long (default 5)
  --paused-interval SEC   seconds between beacons of a paused release (default 6 x --interval)
  --status-port N     UDP port of the status channel (default 4242)`;

function describe(e: PublisherEvent): string {
  switch (e.type) {
    case 'started':
      return `publishing on ${e.interface}, beacons signed by ${e.signer}`;
    case 'release-added':
      return `${e.state} ${e.product} ${e.sequence} (${e.version}) ${e.manifestId.slice(0, 16)}${e.state === 'announced' ? ` data [${e.group}]:${e.port}` : ` ${e.halt ?? ''}`}`;
    case 'release-withdrawn':
      return `withdrawn ${e.product} ${e.sequence} ${e.manifestId.slice(0, 16)}`;
    case 'release-error':
      return `not published: ${e.message}`;
    case 'beacon':
      return `${e.kind} ${e.product} ${e.sequence} -> [${e.group}]`;
    case 'send-error':
      return `send failed: ${e.message}`;
    case 'reloaded':
      return `reloaded: ${e.releases} releases (+${e.added} -${e.withdrawn}, ${e.errors} errors)`;
    case 'paused':
    case 'resumed':
      return `${e.type} ${e.product} ${e.sequence} (${e.version}): ${e.reason ?? ''}`;
    case 'listening-status':
      return `hearing ${e.product}'s devices on [${e.group}]:${e.port}`;
    case 'stopped':
      return 'stopped';
  }
}

const DEMAND_FLAGS = ['budget-kbit', 'fleet-size', 'quiet-after', 'grace', 'hold', 'paused-interval', 'status-port'] as const;

/** The pausing options, or undefined without --registry (the others then make no sense). */
function demandOptions(v: Partial<Record<'registry' | (typeof DEMAND_FLAGS)[number], string>>): DemandOptions | undefined {
  if (v.registry === undefined) {
    const stray = DEMAND_FLAGS.find((f) => v[f] !== undefined);
    if (stray) throw new UsageError(`--${stray} needs --registry FILE (pausing is off without it)`);
    return undefined;
  }
  if (!existsSync(v.registry)) throw new UsageError(`no registry at ${v.registry} (create it with 'iotupd fleet enrol')`);
  const d: DemandOptions = {
    registry: v.registry,
    budget: {
      bitsPerSecond: numberOption('budget-kbit', v['budget-kbit'], 256, 0.001, 1e9) * 1000,
      fleetSize: Math.round(numberOption('fleet-size', v['fleet-size'], 1000, 1, 1e9)),
    },
    holdMs: numberOption('hold', v.hold, 5, 0, 86400) * 1000,
  };
  if (v['quiet-after'] !== undefined) d.quietAfterMs = numberOption('quiet-after', v['quiet-after'], 0, 0.001, 1e9) * 1000;
  if (v.grace !== undefined) d.graceMs = numberOption('grace', v.grace, 0, 0, 1e9) * 1000;
  if (v['paused-interval'] !== undefined) d.pausedInterval = numberOption('paused-interval', v['paused-interval'], 30, 0.05, 86400) * 1000;
  if (v['status-port'] !== undefined) d.port = numberOption('status-port', v['status-port'], 4242, 1, 65535);
  return d;
}

export const publishCommand: Command = {
  usage,
  async run(argv, signal) {
    const { values, positionals } = parse(argv, {
      interface: { type: 'string' },
      key: { type: 'string' },
      releases: { type: 'string' },
      config: { type: 'string' },
      trust: { type: 'string', multiple: true },
      'announce-only': { type: 'boolean' },
      interval: { type: 'string' },
      'max-rate': { type: 'string' },
      lifetime: { type: 'string' },
      'data-timeout': { type: 'string' },
      rate: { type: 'string' },
      'group-key': { type: 'string' },
      scope: { type: 'string' },
      port: { type: 'string' },
      ssm: { type: 'boolean' },
      json: { type: 'boolean' },
      registry: { type: 'string' },
      'budget-kbit': { type: 'string' },
      'fleet-size': { type: 'string' },
      'quiet-after': { type: 'string' },
      grace: { type: 'string' },
      hold: { type: 'string' },
      'paused-interval': { type: 'string' },
      'status-port': { type: 'string' },
    });
    if (positionals.length > 0) throw new UsageError(`unexpected argument '${positionals[0]}'`);
    if (values.interface === undefined || values.key === undefined) throw new UsageError('--interface and --key are required');
    if ((values.releases === undefined) === (values.config === undefined)) throw new UsageError('give exactly one of --releases DIR and --config FILE');
    if (values.scope !== undefined && !(values.scope in SCOPES)) throw new UsageError(`--scope must be one of ${Object.keys(SCOPES).join(', ')}`);
    const json = values.json ?? !process.stdout.isTTY;
    const demand = demandOptions(values);
    const key = loadSigningKey(values.key);
    const trust = values.trust && values.trust.length > 0 ? new TrustStore(values.trust.map((t) => loadPublicKey(t))) : undefined;
    const publisher = new Publisher({
      interface: values.interface,
      key,
      ...(values.releases !== undefined ? { releasesDir: values.releases } : { configFile: values.config as string }),
      ...(trust ? { trust } : {}),
      ...(values['announce-only'] ? {} : { serve: fountainServer({ rateBps: numberOption('rate', values.rate, 20, 0.001, 100_000) * 1e6, signingKey: key, ...(values['group-key'] !== undefined ? { groupKey: loadGroupKey(values['group-key']) } : {}) }) }),
      interval: numberOption('interval', values.interval, 5, 0.05, 86400) * 1000,
      maxBeaconsPerSecond: numberOption('max-rate', values['max-rate'], 10, 0.01, 1000),
      beaconLifetime: Math.round(numberOption('lifetime', values.lifetime, 600, 1, 365 * 86400)),
      dataTimeout: Math.round(numberOption('data-timeout', values['data-timeout'], 60, 1, 86400)),
      ...(values.scope !== undefined ? { scope: values.scope as Scope } : {}),
      ...(values.port !== undefined ? { port: numberOption('port', values.port, 4242, 1, 65535) } : {}),
      ...(values.ssm ? { ssm: true } : {}),
      ...(demand ? { demand } : {}),
      signal,
      onEvent: (e) => {
        if (json) console.log(JSON.stringify(e));
        else if (e.type !== 'beacon') console.error(`iotupd: ${describe(e)}`);
      },
    });
    const onHup = (): void => void publisher.reload();
    process.on('SIGHUP', onHup);
    // The publisher's timers are unref'd (a library never holds a process); the service does.
    const keepAlive = setInterval(() => undefined, 1 << 30);
    try {
      await publisher.start();
      await new Promise<void>((done) => {
        if (signal.aborted) done();
        else signal.addEventListener('abort', () => done(), { once: true });
      });
      await publisher.stop();
    } finally {
      process.off('SIGHUP', onHup);
      clearInterval(keepAlive);
      await publisher.stop();
    }
    return 0;
  },
};
