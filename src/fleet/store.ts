// The collector's SQLite database (docs/fleet-status.md "Database"): current state per device,
// history of changes, drop counts, and the publisher's last word on each release. better-sqlite3
// is synchronous: one report is one short transaction, and a restarted collector reads its
// devices, releases and counters back from here.
import { createRequire } from 'node:module';
import type BetterSqlite3 from 'better-sqlite3';
import { StorageError } from '../errors.js';
import type { AgentState, ReportReason, StatusReport } from '../wire/status.js';
import type { DemandCounts, ReleaseState } from '../wire/beacon.js';

/**
 * 2: the releases table. A version 1 database is brought up to 2 when a collector opens it (the
 * schema only adds a table); a database of a newer version than this one is refused.
 */
export const SCHEMA_VERSION = 2;

// The native SQLite addon is loaded when a store is opened, not when iotupd/fleet is imported:
// a device that only reports never maps it.
const require = createRequire(import.meta.url);
let Database: typeof BetterSqlite3 | undefined;
function openDatabase(path: string, options: BetterSqlite3.Options): BetterSqlite3.Database {
  Database ??= require('better-sqlite3') as typeof BetterSqlite3;
  return new Database(path, options);
}

export const SCHEMA = `
CREATE TABLE IF NOT EXISTS meta (
  key   TEXT PRIMARY KEY,
  value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS devices (
  device_id          TEXT PRIMARY KEY,
  public_key         BLOB NOT NULL,
  trusted            INTEGER NOT NULL,
  counter            TEXT NOT NULL,
  first_seen         INTEGER NOT NULL,
  last_seen          INTEGER NOT NULL,
  reports            INTEGER NOT NULL,
  last_from          TEXT,
  reason             TEXT NOT NULL,
  product            TEXT NOT NULL,
  device_class       TEXT NOT NULL,
  state              TEXT NOT NULL,
  progress           REAL,
  installed_version  TEXT NOT NULL,
  installed_sequence TEXT NOT NULL,
  pending_version    TEXT,
  pending_sequence   TEXT,
  last_error         TEXT,
  uptime             INTEGER NOT NULL,
  agent_version      TEXT NOT NULL,
  device_time        INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS devices_version ON devices (trusted, installed_version);
CREATE TABLE IF NOT EXISTS history (
  id                 INTEGER PRIMARY KEY,
  device_id          TEXT NOT NULL,
  received_at        INTEGER NOT NULL,
  counter            TEXT NOT NULL,
  trusted            INTEGER NOT NULL,
  reason             TEXT NOT NULL,
  state              TEXT NOT NULL,
  progress           REAL,
  installed_version  TEXT NOT NULL,
  installed_sequence TEXT NOT NULL,
  pending_version    TEXT,
  last_error         TEXT
);
CREATE INDEX IF NOT EXISTS history_device ON history (device_id, id);
CREATE TABLE IF NOT EXISTS drops (
  reason TEXT PRIMARY KEY,
  count  INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS releases (
  sequence      TEXT NOT NULL,
  manifest_id   BLOB NOT NULL,
  version       TEXT NOT NULL,
  state         TEXT NOT NULL,
  reason        TEXT NOT NULL,
  live          INTEGER NOT NULL,
  needing       INTEGER NOT NULL,
  received      INTEGER NOT NULL,
  waiting       INTEGER NOT NULL,
  outside       INTEGER NOT NULL,
  gave_up       INTEGER NOT NULL,
  issued_at     INTEGER NOT NULL,
  expires       INTEGER NOT NULL,
  first_seen    INTEGER NOT NULL,
  received_at   INTEGER NOT NULL,
  signer_key_id BLOB NOT NULL,
  counter       TEXT NOT NULL,
  last_from     TEXT,
  PRIMARY KEY (sequence, manifest_id)
);
`;

/** What the publisher last said about one release (a verified STATE beacon), as the collector keeps it. */
export interface ReleaseRecord {
  sequence: bigint;
  manifestId: Uint8Array;
  version: string;
  /** What the publisher does with the release's data. */
  state: ReleaseState;
  demand: DemandCounts;
  /** The publisher's words (text, never markup). */
  reason: string;
  /** The beacon's issued-at and expiry, unix seconds (publisher clock). */
  issuedAt: number;
  expires: number;
  /** Collector clock, ms: the first and the last beacon heard for this release. */
  firstSeen: number;
  receivedAt: number;
  signerKeyId: Uint8Array;
  /** The signer's counter in the last beacon stored (a restarted collector refuses any not above it). */
  counter: bigint;
  lastFrom?: string;
}

interface ReleaseRow {
  sequence: string;
  manifest_id: Buffer;
  version: string;
  state: string;
  reason: string;
  live: number;
  needing: number;
  received: number;
  waiting: number;
  outside: number;
  gave_up: number;
  issued_at: number;
  expires: number;
  first_seen: number;
  received_at: number;
  signer_key_id: Buffer;
  counter: string;
  last_from: string | null;
}

function toRelease(r: ReleaseRow): ReleaseRecord {
  const rel: ReleaseRecord = {
    sequence: BigInt(r.sequence),
    manifestId: new Uint8Array(r.manifest_id),
    version: r.version,
    state: r.state as ReleaseState,
    demand: { live: r.live, needing: r.needing, received: r.received, waiting: r.waiting, outside: r.outside, gaveUp: r.gave_up },
    reason: r.reason,
    issuedAt: r.issued_at,
    expires: r.expires,
    firstSeen: r.first_seen,
    receivedAt: r.received_at,
    signerKeyId: new Uint8Array(r.signer_key_id),
    counter: BigInt(r.counter),
  };
  if (r.last_from !== null) rel.lastFrom = r.last_from;
  return rel;
}

function releaseRow(r: ReleaseRecord): ReleaseRow {
  return {
    sequence: r.sequence.toString(),
    manifest_id: Buffer.from(r.manifestId),
    version: r.version,
    state: r.state,
    reason: r.reason,
    live: r.demand.live,
    needing: r.demand.needing,
    received: r.demand.received,
    waiting: r.demand.waiting,
    outside: r.demand.outside,
    gave_up: r.demand.gaveUp,
    issued_at: r.issuedAt,
    expires: r.expires,
    first_seen: r.firstSeen,
    received_at: r.receivedAt,
    signer_key_id: Buffer.from(r.signerKeyId),
    counter: r.counter.toString(),
    last_from: r.lastFrom ?? null,
  };
}


/** One device as the collector last heard it. */
export interface DeviceRecord {
  deviceId: string;
  publicKey: Uint8Array;
  /** The key is in the registry. Untrusted records are shown as unknown, never counted as the fleet. */
  trusted: boolean;
  /** Last accepted counter. */
  counter: bigint;
  firstSeen: number;
  lastSeen: number;
  reports: number;
  lastFrom?: string;
  reason: ReportReason;
  product: string;
  deviceClass: string;
  state: AgentState;
  progress?: number;
  installedVersion: string;
  installedSequence: bigint;
  pendingVersion?: string;
  pendingSequence?: bigint;
  lastError?: string;
  uptime: number;
  agentVersion: string;
  deviceTime: number;
}

export interface HistoryEntry {
  deviceId: string;
  receivedAt: number;
  counter: bigint;
  trusted: boolean;
  reason: ReportReason;
  state: AgentState;
  progress?: number;
  installedVersion: string;
  installedSequence: bigint;
  pendingVersion?: string;
  lastError?: string;
}

interface DeviceRow {
  device_id: string;
  public_key: Buffer;
  trusted: number;
  counter: string;
  first_seen: number;
  last_seen: number;
  reports: number;
  last_from: string | null;
  reason: string;
  product: string;
  device_class: string;
  state: string;
  progress: number | null;
  installed_version: string;
  installed_sequence: string;
  pending_version: string | null;
  pending_sequence: string | null;
  last_error: string | null;
  uptime: number;
  agent_version: string;
  device_time: number;
}

interface HistoryRow {
  device_id: string;
  received_at: number;
  counter: string;
  trusted: number;
  reason: string;
  state: string;
  progress: number | null;
  installed_version: string;
  installed_sequence: string;
  pending_version: string | null;
  last_error: string | null;
}

function toRecord(r: DeviceRow): DeviceRecord {
  const d: DeviceRecord = {
    deviceId: r.device_id,
    publicKey: new Uint8Array(r.public_key),
    trusted: r.trusted === 1,
    counter: BigInt(r.counter),
    firstSeen: r.first_seen,
    lastSeen: r.last_seen,
    reports: r.reports,
    reason: r.reason as ReportReason,
    product: r.product,
    deviceClass: r.device_class,
    state: r.state as AgentState,
    installedVersion: r.installed_version,
    installedSequence: BigInt(r.installed_sequence),
    uptime: r.uptime,
    agentVersion: r.agent_version,
    deviceTime: r.device_time,
  };
  if (r.last_from !== null) d.lastFrom = r.last_from;
  if (r.progress !== null) d.progress = r.progress;
  if (r.pending_version !== null) d.pendingVersion = r.pending_version;
  if (r.pending_sequence !== null) d.pendingSequence = BigInt(r.pending_sequence);
  if (r.last_error !== null) d.lastError = r.last_error;
  return d;
}

function toHistory(r: HistoryRow): HistoryEntry {
  const h: HistoryEntry = {
    deviceId: r.device_id,
    receivedAt: r.received_at,
    counter: BigInt(r.counter),
    trusted: r.trusted === 1,
    reason: r.reason as ReportReason,
    state: r.state as AgentState,
    installedVersion: r.installed_version,
    installedSequence: BigInt(r.installed_sequence),
  };
  if (r.progress !== null) h.progress = r.progress;
  if (r.pending_version !== null) h.pendingVersion = r.pending_version;
  if (r.last_error !== null) h.lastError = r.last_error;
  return h;
}

/** The record a newly accepted report makes, given the device's previous one (if any). */
export function recordOf(report: StatusReport, trusted: boolean, now: number, from: string | undefined, prev: DeviceRecord | undefined): DeviceRecord {
  const d: DeviceRecord = {
    deviceId: report.deviceId,
    publicKey: report.publicKey,
    trusted,
    counter: report.counter,
    firstSeen: prev?.firstSeen ?? now,
    lastSeen: now,
    reports: (prev?.reports ?? 0) + 1,
    reason: report.reason,
    product: report.product,
    deviceClass: report.deviceClass,
    state: report.state,
    installedVersion: report.installedVersion,
    installedSequence: report.installedSequence,
    uptime: report.uptime,
    agentVersion: report.agentVersion,
    deviceTime: report.time,
  };
  if (from !== undefined) d.lastFrom = from;
  if (report.progress !== undefined) d.progress = report.progress;
  if (report.pendingVersion !== undefined) d.pendingVersion = report.pendingVersion;
  if (report.pendingSequence !== undefined) d.pendingSequence = report.pendingSequence;
  if (report.lastError !== undefined) d.lastError = report.lastError;
  return d;
}

/** Whether `next` is worth a history row after `prev`: a state, version, pending or error change. */
export function isTransition(prev: DeviceRecord | undefined, next: DeviceRecord): boolean {
  return (
    prev === undefined ||
    prev.trusted !== next.trusted ||
    prev.state !== next.state ||
    prev.installedVersion !== next.installedVersion ||
    prev.installedSequence !== next.installedSequence ||
    prev.pendingVersion !== next.pendingVersion ||
    prev.lastError !== next.lastError
  );
}

export class FleetStore {
  readonly db: BetterSqlite3.Database;
  readonly #upsert: BetterSqlite3.Statement;
  readonly #history: BetterSqlite3.Statement;
  readonly #drop: BetterSqlite3.Statement;
  readonly #putRelease: BetterSqlite3.Statement;
  readonly #write: (d: DeviceRecord, transition: boolean) => void;

  /** Open (creating) the database at `path` (':memory:' for none); `readonly` for viewers. */
  constructor(
    readonly path: string,
    opts: { readonly?: boolean; product?: string } = {},
  ) {
    try {
      this.db = openDatabase(path, { readonly: opts.readonly ?? false, fileMustExist: opts.readonly ?? false });
    } catch (err) {
      throw new StorageError(`cannot open database ${path}: ${(err as Error).message}`, 'ERR_FLEET_DB', { cause: err });
    }
    try {
      if (!opts.readonly) {
        // WAL: `iotupd status --db` and `fleet approve` can read while a collector writes.
        this.db.pragma('journal_mode = WAL');
        this.db.pragma('synchronous = NORMAL');
        // The version first: a newer database is refused before anything is written to it. Then
        // SCHEMA creates what an older one lacks (IF NOT EXISTS), and the version is raised.
        this.db.exec('CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)');
        const v = this.db.prepare('SELECT value FROM meta WHERE key = ?').get('schema') as { value: string } | undefined;
        if (v !== undefined && !(/^[1-9][0-9]{0,8}$/.test(v.value) && Number(v.value) <= SCHEMA_VERSION)) throw new Error(`schema version ${v.value}, this iotupd reads up to ${SCHEMA_VERSION}`);
        if (opts.product !== undefined) {
          const p = this.db.prepare('SELECT value FROM meta WHERE key = ?').get('product') as { value: string } | undefined;
          if (p !== undefined && p.value !== opts.product) throw new Error(`it belongs to product '${p.value}', not '${opts.product}'`);
        }
        this.db.transaction(() => {
          this.db.exec(SCHEMA);
          if (v === undefined) this.db.prepare('INSERT INTO meta (key, value) VALUES (?, ?)').run('schema', String(SCHEMA_VERSION));
          else if (Number(v.value) < SCHEMA_VERSION) this.db.prepare('UPDATE meta SET value = ? WHERE key = ?').run(String(SCHEMA_VERSION), 'schema');
          if (opts.product !== undefined) this.db.prepare('INSERT OR IGNORE INTO meta (key, value) VALUES (?, ?)').run('product', opts.product);
        })();
      } else {
        this.db.prepare('SELECT count(*) FROM devices').get();
        const p = opts.product === undefined ? undefined : (this.db.prepare('SELECT value FROM meta WHERE key = ?').get('product') as { value: string } | undefined);
        if (p !== undefined && p.value !== opts.product) throw new Error(`it belongs to product '${p.value}', not '${opts.product}'`);
      }
    } catch (err) {
      this.db.close();
      throw new StorageError(`database ${path}: ${(err as Error).message}`, 'ERR_FLEET_DB', { cause: err });
    }
    const cols =
      'device_id, public_key, trusted, counter, first_seen, last_seen, reports, last_from, reason, product, device_class, state, progress, installed_version, installed_sequence, pending_version, pending_sequence, last_error, uptime, agent_version, device_time';
    const params = cols
      .split(', ')
      .map((c) => `@${c}`)
      .join(', ');
    this.#upsert = opts.readonly ? (undefined as never) : this.db.prepare(`INSERT OR REPLACE INTO devices (${cols}) VALUES (${params})`);
    this.#history = opts.readonly
      ? (undefined as never)
      : this.db.prepare(
          'INSERT INTO history (device_id, received_at, counter, trusted, reason, state, progress, installed_version, installed_sequence, pending_version, last_error) VALUES (@device_id, @last_seen, @counter, @trusted, @reason, @state, @progress, @installed_version, @installed_sequence, @pending_version, @last_error)',
        );
    this.#drop = opts.readonly ? (undefined as never) : this.db.prepare('INSERT INTO drops (reason, count) VALUES (?, ?) ON CONFLICT (reason) DO UPDATE SET count = count + excluded.count');
    const relCols = 'sequence, manifest_id, version, state, reason, live, needing, received, waiting, outside, gave_up, issued_at, expires, first_seen, received_at, signer_key_id, counter, last_from';
    const relParams = relCols
      .split(', ')
      .map((c) => `@${c}`)
      .join(', ');
    this.#putRelease = opts.readonly ? (undefined as never) : this.db.prepare(`INSERT OR REPLACE INTO releases (${relCols}) VALUES (${relParams})`);
    this.#write = this.db.transaction((d: DeviceRecord, transition: boolean) => {
      const row = toRow(d);
      this.#upsert.run(row);
      if (transition) this.#history.run(row);
    });
  }

  /** Store `d` as the device's current record, and a history row when `transition`. */
  put(d: DeviceRecord, transition: boolean): void {
    this.#write(d, transition);
  }

  get(deviceId: string): DeviceRecord | undefined {
    const r = this.db.prepare('SELECT * FROM devices WHERE device_id = ?').get(deviceId) as DeviceRow | undefined;
    return r && toRecord(r);
  }

  all(): DeviceRecord[] {
    return (this.db.prepare('SELECT * FROM devices ORDER BY device_id').all() as DeviceRow[]).map(toRecord);
  }

  setTrusted(deviceId: string, trusted: boolean): void {
    this.db.prepare('UPDATE devices SET trusted = ? WHERE device_id = ?').run(trusted ? 1 : 0, deviceId);
  }

  /** Newest first. */
  history(deviceId: string, limit = 100): HistoryEntry[] {
    return (this.db.prepare('SELECT * FROM history WHERE device_id = ? ORDER BY id DESC LIMIT ?').all(deviceId, limit) as HistoryRow[]).map(toHistory);
  }

  /** Trusted devices per installed version. */
  versionCounts(): { version: string; count: number }[] {
    return this.db.prepare('SELECT installed_version AS version, count(*) AS count FROM devices WHERE trusted = 1 GROUP BY installed_version ORDER BY count DESC, version').all() as {
      version: string;
      count: number;
    }[];
  }

  addDrops(counts: Record<string, number>): void {
    const tx = this.db.transaction(() => {
      for (const [reason, n] of Object.entries(counts)) if (n > 0) this.#drop.run(reason, n);
    });
    tx();
  }

  /** Store `r` as the release's current record (one row per sequence and manifest id). */
  putRelease(r: ReleaseRecord): void {
    this.#putRelease.run(releaseRow(r));
  }

  deleteRelease(sequence: bigint, manifestId: Uint8Array): void {
    this.db.prepare('DELETE FROM releases WHERE sequence = ? AND manifest_id = ?').run(sequence.toString(), Buffer.from(manifestId));
  }

  /** Every release the publisher spoke of, newest sequence first (none in a version 1 database opened read-only). */
  releases(): ReleaseRecord[] {
    const t = this.db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'releases'").get();
    if (t === undefined) return [];
    const all = (this.db.prepare('SELECT * FROM releases').all() as ReleaseRow[]).map(toRelease);
    return all.sort((a, b) => (a.sequence < b.sequence ? 1 : a.sequence > b.sequence ? -1 : b.receivedAt - a.receivedAt));
  }

  drops(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const r of this.db.prepare('SELECT reason, count FROM drops ORDER BY reason').all() as { reason: string; count: number }[]) out[r.reason] = r.count;
    return out;
  }

  close(): void {
    if (this.db.open) this.db.close();
  }
}

function toRow(d: DeviceRecord): DeviceRow {
  return {
    device_id: d.deviceId,
    public_key: Buffer.from(d.publicKey),
    trusted: d.trusted ? 1 : 0,
    counter: d.counter.toString(),
    first_seen: d.firstSeen,
    last_seen: d.lastSeen,
    reports: d.reports,
    last_from: d.lastFrom ?? null,
    reason: d.reason,
    product: d.product,
    device_class: d.deviceClass,
    state: d.state,
    progress: d.progress ?? null,
    installed_version: d.installedVersion,
    installed_sequence: d.installedSequence.toString(),
    pending_version: d.pendingVersion ?? null,
    pending_sequence: d.pendingSequence?.toString() ?? null,
    last_error: d.lastError ?? null,
    uptime: d.uptime,
    agent_version: d.agentVersion,
    device_time: d.deviceTime,
  };
}
