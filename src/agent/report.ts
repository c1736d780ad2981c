// The agent's fleet status (docs/agent.md "Status reports"): `agentSnapshot` maps the agent's
// persisted status and a few live facts to the DeviceSnapshot a status reporter sends
// (docs/fleet-status.md); `reportStatus` keeps a reporter up to date from the agent's events.
// The mapping is pure; the publisher's view of a rollout relies on its rules, which
// docs/agent.md states.
import { readFileSync } from 'node:fs';
import type { DeviceSnapshot } from '../fleet/reporter.js';
import { truncateUtf8 } from '../fleet/reporter.js';
import { LIMITS, type AgentState } from '../wire/status.js';
import type { Agent, AgentStatus, ReleaseInfo } from './agent.js';
import type { AgentConfig } from './config.js';
import type { DownloadProgress } from './multicast.js';
import type { Phase } from './state.js';

/** Agent state reported for each persisted phase other than idle. */
const PHASE_STATE: Readonly<Record<Exclude<Phase, 'idle'>, AgentState>> = {
  download: 'receiving',
  verify: 'verifying',
  install: 'installing',
  switch: 'installing',
  rollback: 'installing',
  staged: 'waiting',
  'reboot-pending': 'rebooting',
  'health-check': 'confirming',
  commit: 'confirming',
  failed: 'failed',
};

export interface AgentSnapshotInput {
  /** `agent.status`. */
  status: AgentStatus;
  config: Pick<AgentConfig, 'deviceId' | 'product' | 'deviceClass'>;
  /** The rollout wait in progress (from the agent's `waiting` event until its next state or skipped event). */
  waiting?: { release: ReleaseInfo };
  /** 0..1: how much of the release in progress is received (used in phase download only). */
  progress?: number;
  /** Default: the version of this package. */
  agentVersion?: string;
}

let packageVersionCache: string | undefined;

/** The version of this package (read once from its package.json; '' when it cannot be read). */
export function packageVersion(): string {
  if (packageVersionCache === undefined) {
    let v = '';
    try {
      const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { name?: unknown; version?: unknown };
      if (pkg.name === 'iotupd' && typeof pkg.version === 'string') v = truncateUtf8(pkg.version, LIMITS.agentVersion);
    } catch {
      // Not laid out as the package is (a bundle): the reports carry no agent version.
    }
    packageVersionCache = v;
  }
  return packageVersionCache;
}

function errorText(o: { reason?: string | undefined; code?: string | undefined }): string | undefined {
  if (o.code !== undefined && o.reason !== undefined) return `${o.code}: ${o.reason}`;
  return o.reason ?? o.code;
}

/** The status snapshot of an agent: pure, from its persisted status, config and live facts. */
export function agentSnapshot(input: AgentSnapshotInput): DeviceSnapshot {
  const { status, config } = input;
  const snap: DeviceSnapshot = {
    deviceId: config.deviceId,
    product: config.product,
    installedVersion: status.runningVersion ?? '',
    installedSequence: BigInt(status.installedSequence),
    state: 'idle',
    agentVersion: input.agentVersion ?? packageVersion(),
  };
  if (config.deviceClass !== undefined) snap.deviceClass = config.deviceClass;
  const pending = (r: { version: string; sequence: string }) => {
    snap.pendingVersion = r.version;
    snap.pendingSequence = BigInt(r.sequence);
  };
  const r = status.release;
  if (status.phase !== 'idle' && r) {
    snap.state = PHASE_STATE[status.phase];
    pending(r);
    if (status.phase === 'download' && input.progress !== undefined && Number.isFinite(input.progress)) snap.progress = Math.min(1, Math.max(0, input.progress));
    if (status.phase === 'failed') {
      const e = errorText(r);
      if (e !== undefined) snap.lastError = e;
    }
    return snap;
  }
  if (input.waiting) {
    snap.state = 'waiting';
    pending(input.waiting.release);
    return snap;
  }
  const last = status.last;
  if (last && (last.result === 'failed' || last.result === 'rolled-back')) {
    snap.state = last.result;
    pending(last);
    const e = errorText(last);
    if (e !== undefined) snap.lastError = e;
    return snap;
  }
  if (last?.result === 'installed' || status.installedVersion !== null || BigInt(status.installedSequence) > 0n) snap.state = 'installed';
  return snap;
}

/** Anything that takes snapshots: FleetReporter, or a recorder around a StatusReporter. */
export interface StatusTarget {
  update(snapshot: DeviceSnapshot): void;
}

/** Where download progress comes from (MulticastSource). */
export interface ProgressSource {
  on(event: 'progress', listener: (p: DownloadProgress) => void): unknown;
  off(event: 'progress', listener: (p: DownloadProgress) => void): unknown;
}

export interface ReportStatusOptions {
  /** Download progress of the release in progress. */
  source?: ProgressSource;
  /** Errors of `reporter.update` after the first snapshot (they never reach the agent). */
  onError?: (err: Error) => void;
  /** Default: the version of this package. */
  agentVersion?: string;
}

/**
 * Keep `reporter` up to date with `agent`: the first snapshot at once (its errors are thrown),
 * then one on each state, outcome, skip, halt and rollout wait, and on download progress.
 * Returns a function that detaches it.
 */
export function reportStatus(agent: Agent, reporter: StatusTarget, opts: ReportStatusOptions = {}): () => void {
  let waiting: ReleaseInfo | undefined;
  let progress: DownloadProgress | undefined;
  const snapshot = (): DeviceSnapshot => {
    const status = agent.status;
    const input: AgentSnapshotInput = { status, config: agent.config };
    if (waiting) input.waiting = { release: waiting };
    if (progress && status.phase === 'download' && status.release?.manifestId === progress.manifestId) input.progress = progress.fraction;
    if (opts.agentVersion !== undefined) input.agentVersion = opts.agentVersion;
    return agentSnapshot(input);
  };
  reporter.update(snapshot());
  const send = (): void => {
    try {
      reporter.update(snapshot());
    } catch (err) {
      opts.onError?.(err instanceof Error ? err : new Error(String(err)));
    }
  };
  const onState = (): void => {
    waiting = undefined;
    send();
  };
  const onWaiting = (e: { release: ReleaseInfo }): void => {
    waiting = e.release;
    send();
  };
  const onProgress = (p: DownloadProgress): void => {
    progress = p;
    const s = agent.status;
    if (s.phase === 'download' && s.release?.manifestId === p.manifestId) send();
  };
  agent.on('state', onState);
  agent.on('skipped', onState);
  agent.on('waiting', onWaiting);
  for (const e of ['installed', 'rolled-back', 'failed', 'halted'] as const) agent.on(e, send);
  opts.source?.on('progress', onProgress);
  return () => {
    agent.off('state', onState);
    agent.off('skipped', onState);
    agent.off('waiting', onWaiting);
    for (const e of ['installed', 'rolled-back', 'failed', 'halted'] as const) agent.off(e, send);
    opts.source?.off('progress', onProgress);
  };
}
