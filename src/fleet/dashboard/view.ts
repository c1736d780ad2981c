// What the dashboard page shows, computed from the collector's state (docs/fleet-status.md
// "Dashboard"). Pure functions of the device and release lists: the page only renders, so what it
// shows can be checked here without a browser. Everything is JSON (u64 sequences as decimal strings).
import { toHex } from '../../crypto/bytes.js';
import { keyIdOf } from '../../crypto/keys.js';
import type { Collector, DeviceView, FleetSummary, ReleaseHeard, ReleaseView } from '../collector.js';
import type { HistoryEntry } from '../store.js';
import type { AgentState } from '../../wire/status.js';
import type { DemandCounts, ReleaseState } from '../../wire/beacon.js';

/** Agent states between "a release is pending" and "installed": the rollout's in-progress column. */
const IN_PROGRESS: ReadonlySet<AgentState> = new Set(['waiting', 'receiving', 'verifying', 'installing', 'rebooting', 'confirming']);
const FAILED: ReadonlySet<AgentState> = new Set(['failed', 'rolled-back']);

export interface DeviceJson {
  deviceId: string;
  trusted: boolean;
  keyId: string;
  health: DeviceView['health'];
  state: AgentState;
  progress: number | null;
  installedVersion: string;
  installedSequence: string;
  pendingVersion: string | null;
  pendingSequence: string | null;
  lastError: string | null;
  deviceClass: string;
  agentVersion: string;
  lastSeen: number;
  reports: number;
  from: string | null;
}

/** What the publisher last said about one release (a verified STATE beacon). */
export interface ReleaseJson {
  sequence: string;
  /** Hex. */
  manifestId: string;
  version: string;
  /** The publisher's state in its last beacon. */
  state: ReleaseState;
  /** What to show: `state` while the publisher is heard, `unknown` once it is quiet. */
  current: ReleaseState | 'unknown';
  heard: ReleaseHeard;
  /** The publisher's words: text, never markup. */
  reason: string;
  demand: DemandCounts;
  /** Unix seconds (publisher clock). */
  issuedAt: number;
  expires: number;
  /** Collector clock, ms. */
  firstSeen: number;
  receivedAt: number;
  /** Hex. */
  signerKeyId: string;
  from: string | null;
}

/** One release's rollout across the trusted fleet, from the devices' own reports and the publisher's word. */
export interface RolloutRow {
  sequence: string;
  /** The version name devices report for this sequence (installed or pending), else the publisher's. */
  version: string;
  /** installed sequence >= this one. */
  installed: number;
  /** This release pending and the agent between waiting and confirming. */
  inProgress: number;
  /** This release pending and the agent failed or rolled back. */
  failed: number;
  /** Neither: not reached yet (includes devices that have not heard of the release). */
  notYet: number;
  /** Of the devices not installed, how many are quiet (their last state may be stale). */
  quiet: number;
  total: number;
  /** The publisher's last word on this sequence (the one heard last if it spoke of several manifests). */
  publisher: ReleaseJson | null;
  /** Manifest ids the publisher spoke of under this sequence: more than one is a conflict. */
  publisherManifests: number;
}

export interface DashboardSnapshot {
  product: string;
  /** Collector clock when this was taken (the page shows "seen N s ago" against it). */
  now: number;
  summary: FleetSummary;
  rollout: RolloutRow[];
  /** Every release the publisher spoke of, newest sequence first (at most `limit`). */
  releases: ReleaseJson[];
  /** Trusted devices whose last state is failed or rolled back (and are not quiet). */
  failed: DeviceJson[];
  /** Trusted devices not heard from for quietAfterMs, whatever their last state. */
  quiet: DeviceJson[];
  /** Not enrolled: shown apart, never counted in the rollout, versions or health. */
  unknown: DeviceJson[];
  /** Every trusted device (at most `limit`, failed and quiet ones first). */
  devices: DeviceJson[];
  /** How many of each list were left out by the limit. */
  omitted: { failed: number; quiet: number; unknown: number; devices: number; releases: number };
}

export interface HistoryJson {
  receivedAt: number;
  counter: string;
  trusted: boolean;
  reason: string;
  state: AgentState;
  progress: number | null;
  installedVersion: string;
  installedSequence: string;
  pendingVersion: string | null;
  lastError: string | null;
}

export function deviceJson(d: DeviceView): DeviceJson {
  return {
    deviceId: d.deviceId,
    trusted: d.trusted,
    keyId: toHex(keyIdOf(d.publicKey)),
    health: d.health,
    state: d.state,
    progress: d.progress ?? null,
    installedVersion: d.installedVersion,
    installedSequence: d.installedSequence.toString(),
    pendingVersion: d.pendingVersion ?? null,
    pendingSequence: d.pendingSequence?.toString() ?? null,
    lastError: d.lastError ?? null,
    deviceClass: d.deviceClass,
    agentVersion: d.agentVersion,
    lastSeen: d.lastSeen,
    reports: d.reports,
    from: d.lastFrom ?? null,
  };
}

export function releaseJson(r: ReleaseView): ReleaseJson {
  return {
    sequence: r.sequence.toString(),
    manifestId: toHex(r.manifestId),
    version: r.version,
    state: r.state,
    current: r.current,
    heard: r.heard,
    reason: r.reason,
    demand: { ...r.demand },
    issuedAt: r.issuedAt,
    expires: r.expires,
    firstSeen: r.firstSeen,
    receivedAt: r.receivedAt,
    signerKeyId: toHex(r.signerKeyId),
    from: r.lastFrom ?? null,
  };
}

export function historyJson(h: HistoryEntry): HistoryJson {
  return {
    receivedAt: h.receivedAt,
    counter: h.counter.toString(),
    trusted: h.trusted,
    reason: h.reason,
    state: h.state,
    progress: h.progress ?? null,
    installedVersion: h.installedVersion,
    installedSequence: h.installedSequence.toString(),
    pendingVersion: h.pendingVersion ?? null,
    lastError: h.lastError ?? null,
  };
}

/**
 * Rollout progress per release sequence seen among trusted devices (installed or pending) or
 * spoken of by the publisher (`releases`, newest sequence first as Collector.releases() gives
 * them), newest first, at most `maxReleases`. A device counts as installed for every sequence up
 * to its own (sequences only grow: a newer release supersedes the older ones it reached).
 */
export function rollout(devices: readonly DeviceView[], releases: readonly ReleaseView[] = [], maxReleases = 8): RolloutRow[] {
  const trusted = devices.filter((d) => d.trusted);
  const names = new Map<bigint, string>();
  for (const d of trusted) {
    if (!names.has(d.installedSequence) || names.get(d.installedSequence) === '') names.set(d.installedSequence, d.installedVersion);
    if (d.pendingSequence !== undefined && !names.get(d.pendingSequence)) names.set(d.pendingSequence, d.pendingVersion ?? '');
  }
  // The publisher's word per sequence: the beacon heard last, and how many manifests it named.
  const said = new Map<bigint, { last: ReleaseView; manifests: number }>();
  for (const r of releases) {
    const s = said.get(r.sequence);
    if (s === undefined) said.set(r.sequence, { last: r, manifests: 1 });
    else {
      s.manifests += 1;
      if (r.receivedAt > s.last.receivedAt) s.last = r;
    }
  }
  // The devices' name for a release wins; the publisher's fills in where none reported one.
  for (const [seq, p] of said) if (!names.get(seq)) names.set(seq, p.last.version);
  const sequences = [...names.keys()].sort((a, b) => (a < b ? 1 : a > b ? -1 : 0)).slice(0, maxReleases);
  return sequences.map((s) => {
    const p = said.get(s);
    const row: RolloutRow = {
      sequence: s.toString(),
      version: names.get(s) ?? '',
      installed: 0,
      inProgress: 0,
      failed: 0,
      notYet: 0,
      quiet: 0,
      total: trusted.length,
      publisher: p === undefined ? null : releaseJson(p.last),
      publisherManifests: p?.manifests ?? 0,
    };
    for (const d of trusted) {
      if (d.installedSequence >= s) {
        row.installed += 1;
        continue;
      }
      if (d.health === 'quiet') row.quiet += 1;
      if (d.pendingSequence === s && IN_PROGRESS.has(d.state)) row.inProgress += 1;
      else if (d.pendingSequence === s && FAILED.has(d.state)) row.failed += 1;
      else row.notYet += 1;
    }
    return row;
  });
}

/** The page's whole state; lists capped at `limit` entries each so a large fleet stays one message. */
export function snapshot(collector: Collector, now: number, limit = 500): DashboardSnapshot {
  const all = collector.devices(now);
  const trusted = all.filter((d) => d.trusted);
  const failed = trusted.filter((d) => d.health === 'failed');
  const quiet = trusted.filter((d) => d.health === 'quiet');
  const unknown = all.filter((d) => !d.trusted);
  const rank = { failed: 0, quiet: 1, ok: 2 } as const;
  const ordered = [...trusted].sort((a, b) => rank[a.health] - rank[b.health]);
  const cap = (l: DeviceView[]): DeviceJson[] => l.slice(0, limit).map(deviceJson);
  const releases = collector.releases(now);
  return {
    product: collector.product,
    now,
    summary: collector.summary(now),
    rollout: rollout(all, releases),
    releases: releases.slice(0, limit).map(releaseJson),
    failed: cap(failed),
    quiet: cap(quiet),
    unknown: cap(unknown),
    devices: cap(ordered),
    omitted: {
      failed: Math.max(0, failed.length - limit),
      quiet: Math.max(0, quiet.length - limit),
      unknown: Math.max(0, unknown.length - limit),
      devices: Math.max(0, ordered.length - limit),
      releases: Math.max(0, releases.length - limit),
    },
  };
}
