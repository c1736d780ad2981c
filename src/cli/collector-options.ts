// The collector options `iotupd status` and `iotupd dashboard` share: the database, the registry,
// the publisher's trust anchors, the rate budget that sets when a device counts as quiet, and the
// status channel to join.
import { existsSync } from 'node:fs';
import type { CollectorOptions, ListenOptions } from '../fleet/index.js';
import { loadPublicKey } from '../crypto/keys.js';
import { TrustStore } from '../crypto/trust.js';
import { UsageError } from '../errors.js';
import { numberOption } from './command.js';

export const COLLECTOR_OPTIONS = {
  product: { type: 'string' },
  interface: { type: 'string' },
  db: { type: 'string' },
  registry: { type: 'string' },
  trust: { type: 'string', multiple: true },
  'quiet-after': { type: 'string' },
  'budget-kbit': { type: 'string' },
  'fleet-size': { type: 'string' },
  channel: { type: 'string' },
  group: { type: 'string' },
  follow: { type: 'boolean' },
} as const;

interface CollectorValues {
  product?: string;
  interface?: string;
  db?: string;
  registry?: string;
  trust?: string[];
  'quiet-after'?: string;
  'budget-kbit'?: string;
  'fleet-size'?: string;
  channel?: string;
  group?: string;
  follow?: boolean;
}

/**
 * The Collector's options from the command line. Without --interface the command shows a
 * database, which must exist: opening a missing one would create it empty and show nothing.
 */
export function collectorOptions(v: CollectorValues): CollectorOptions & { product: string } {
  if (v.product === undefined) throw new UsageError('--product P is required');
  if (v.interface === undefined && v.db === undefined) throw new UsageError('give --interface IF to listen, or --db FILE to show a database');
  if (v.interface === undefined && v.db !== undefined && !existsSync(v.db)) throw new UsageError(`no database at ${v.db} (give --interface IF to start collecting)`);
  if (v.follow === true) {
    // A viewer of a database another collector writes: that collector listens and decides trust.
    if (v.db === undefined) throw new UsageError('--follow needs --db FILE (the database another collector writes)');
    if (v.interface !== undefined) throw new UsageError('--follow shows a database another collector writes: give --interface to that collector, not here');
    if (v.registry !== undefined || v.trust !== undefined) throw new UsageError('--follow shows the trust of the collector that writes the database: give --registry and --trust to it');
  }
  const opts: CollectorOptions & { product: string } = {
    product: v.product,
    budget: {
      bitsPerSecond: numberOption('budget-kbit', v['budget-kbit'], 256, 0.001, 1e9) * 1000,
      fleetSize: Math.round(numberOption('fleet-size', v['fleet-size'], 1000, 1, 1e9)),
    },
  };
  if (v.db !== undefined) opts.db = v.db;
  if (v.follow === true) opts.view = true;
  if (v.registry !== undefined) opts.registry = v.registry;
  const trust = trustFiles(v.trust);
  if (trust.length > 0) opts.trust = new TrustStore(trust.map((f) => loadPublicKey(f)));
  if (v['quiet-after'] !== undefined) opts.quietAfterMs = numberOption('quiet-after', v['quiet-after'], 0, 0.001, 1e9) * 1000;
  return opts;
}

/** The --trust files (repeatable, each also comma-separated); each must exist. */
export function trustFiles(values: string[] | undefined): string[] {
  const files = (values ?? []).flatMap((v) => v.split(',')).map((f) => f.trim());
  for (const f of files) {
    if (f.length === 0) throw new UsageError('--trust needs a file name (an empty one was given)');
    if (!existsSync(f)) throw new UsageError(`no trust file at ${f} (--trust takes the publisher's public key file, as the devices pin it)`);
  }
  return files;
}

/** Where the collector listens: the interface, the status channel's port, and a channel or group other than the product's. */
export function listenOptions(v: CollectorValues & { interface: string }, port: number, signal: AbortSignal): ListenOptions {
  const listen: ListenOptions = { interface: v.interface, port, signal };
  if (v.channel !== undefined) listen.channel = v.channel;
  if (v.group !== undefined) listen.group = v.group;
  return listen;
}
