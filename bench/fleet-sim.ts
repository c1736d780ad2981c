// The fleet status simulation behind `npm run bench:fleet` (and test/fleet/sim.test.ts at a small
// scale): N devices' StatusReporters on a virtual clock, each report really signed, every one
// through the real Collector (verification, replay check, SQLite file). No network: the channel
// is the ingest() call, so the figures are the collector's own cost and the protocol's traffic.
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateSigningKey, type SigningKey } from '../src/crypto/keys.js';
import { prng } from '../test/support/prng.js';
import { Collector } from '../src/fleet/collector.js';
import { Registry } from '../src/fleet/registry.js';
import { StatusReporter, type DeviceSnapshot, type RateBudget } from '../src/fleet/reporter.js';
import { IP_UDP_OVERHEAD, seal, type AgentState } from '../src/wire/status.js';
import type { ManifestFields } from '../src/crypto/manifest.js';
import { releaseDemand } from '../src/publish/demand.js';
import type { DemandCounts } from '../src/wire/beacon.js';

export interface SimOptions {
  devices: number;
  /** Virtual minutes of steady state before the rollout starts. */
  steadyMinutes: number;
  /** Virtual minutes simulated from the rollout's start. */
  rolloutMinutes: number;
  budget: RateBudget;
  /** Fraction of devices whose install fails (at verifying). */
  failRate?: number;
  seed?: number;
  /** Stop early (and say so in `truncatedAt`) when the real run takes longer than this. */
  maxWallSeconds?: number;
}

export interface SimResult {
  devices: number;
  virtualSeconds: number;
  reports: number;
  accepted: number;
  dropped: number;
  heartbeatMs: number;
  /** Channel traffic, bits per second incl. IPv6 + UDP headers. */
  bpsMean: number;
  bpsSteady: number;
  /** Highest 60 s window. */
  bpsMax60s: number;
  budgetBps: number;
  /** Time from an agent's state change to the first report that carries it (or a later state), virtual ms. */
  showMs: { p50: number; p95: number; p99: number; max: number; changes: number };
  /** Collector time per report (real ms) and its share of one core at the fleet's rate. */
  collectorMsPerReport: number;
  collectorCoreShare: number;
  /** Sign time per report (real ms), the device side. */
  signMsPerReport: number;
  wallSeconds: number;
  rssMiB: number;
  /** A restarted collector: load time from the file, and its heap. */
  restartLoadMs: number;
  restartHeapMiB: number;
  /** A publisher's once-a-second recount of who needs a release (src/publish/demand.ts) over this fleet, ms. */
  publisherRecountMs: number;
  /** The first recount of a release, which also computes each device's rollout position. */
  publisherFirstRecountMs: number;
  publisherRecount: DemandCounts;
  dbMiB: number;
  finalStates: Record<string, number>;
  versions: { version: string; count: number }[];
  quietAtEnd: number;
  /** Virtual seconds reached when maxWallSeconds stopped the run early. */
  truncatedAt?: number;
}


/** A binary min-heap of [time, device]. */
class Heap {
  readonly t: number[] = [];
  readonly d: number[] = [];
  push(time: number, dev: number): void {
    let i = this.t.length;
    this.t.push(time);
    this.d.push(dev);
    while (i > 0) {
      const p = (i - 1) >> 1;
      if ((this.t[p] as number) <= time) break;
      this.t[i] = this.t[p] as number;
      this.d[i] = this.d[p] as number;
      i = p;
    }
    this.t[i] = time;
    this.d[i] = dev;
  }
  pop(): [number, number] | undefined {
    if (this.t.length === 0) return undefined;
    const top: [number, number] = [this.t[0] as number, this.d[0] as number];
    const lt = this.t.pop() as number;
    const ld = this.d.pop() as number;
    const n = this.t.length;
    if (n > 0) {
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        if (l >= n) break;
        const r = l + 1;
        const c = r < n && (this.t[r] as number) < (this.t[l] as number) ? r : l;
        if ((this.t[c] as number) >= lt) break;
        this.t[i] = this.t[c] as number;
        this.d[i] = this.d[c] as number;
        i = c;
      }
      this.t[i] = lt;
      this.d[i] = ld;
    }
    return top;
  }
}

interface Device {
  id: string;
  key: SigningKey;
  counter: bigint;
  reporter: StatusReporter;
  snap: DeviceSnapshot;
  /** Times of changes not yet carried by a report. */
  unshown: number[];
  /** The rollout steps still ahead: [virtual ms, state]. */
  plan: [number, AgentState][];
  wakeAt: number;
}

function quantile(sorted: number[], q: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] as number;
}

export function simulate(o: SimOptions, log: (s: string) => void = () => {}): SimResult {
  const rnd = prng(o.seed ?? 1);
  const dir = mkdtempSync(join(tmpdir(), 'iotupd-fleet-sim-'));
  const wall0 = performance.now();
  try {
    log(`keys for ${o.devices} devices ...`);
    const registry = new Registry();
    const devs: Device[] = [];
    const T0 = 1_764_979_200_000;
    for (let i = 0; i < o.devices; i++) {
      const key = generateSigningKey();
      const id = `dev-${String(i).padStart(5, '0')}`;
      registry.enrol(id, key.publicKey);
      const snap: DeviceSnapshot = { deviceId: id, product: 'sensor', deviceClass: 'v2', installedVersion: '1.4.2', installedSequence: 14n, state: 'idle', agentVersion: '0.1.0' };
      devs.push({ id, key, counter: 1n, reporter: new StatusReporter({ budget: o.budget, random: rnd, startedAt: T0 - 3_600_000 }), snap, unshown: [], plan: [], wakeAt: Infinity });
    }
    const db = join(dir, 'fleet.db');
    const collector = new Collector({ product: 'sensor', db, registry, budget: o.budget, now: () => T0 });
    const heap = new Heap();
    const steadyEnd = T0 + o.steadyMinutes * 60_000;
    const plannedEnd = steadyEnd + o.rolloutMinutes * 60_000;
    // Devices come up over the first minute (not all at one instant), idle.
    devs.forEach((d, i) => {
      const t = T0 + Math.floor(rnd() * 60_000);
      d.plan.push([t, 'idle']);
      // The rollout: each device starts receiving within the first 2 minutes, then the steps
      // of an A/B install; a few fail at verification.
      const s = steadyEnd + Math.floor(rnd() * 120_000);
      const fails = rnd() < (o.failRate ?? 0.01);
      const steps: [number, AgentState][] = fails
        ? [
            [s, 'receiving'],
            [s + 180_000, 'verifying'],
            [s + 185_000, 'failed'],
          ]
        : [
            [s, 'receiving'],
            [s + 180_000, 'verifying'],
            [s + 185_000, 'installing'],
            [s + 215_000, 'rebooting'],
            [s + 255_000, 'confirming'],
            [s + 265_000, 'installed'],
          ];
      d.plan.push(...steps);
      heap.push(t, i);
    });
    let reports = 0;
    let accepted = 0;
    let collectorMs = 0;
    let signMs = 0;
    const windowBytes = new Map<number, number>();
    let bytesTotal = 0;
    let bytesSteady = 0;
    const shows: number[] = [];
    let nextTick = T0 + 5000;
    let progressLog = T0;
    let truncatedAt: number | undefined;
    let end = plannedEnd;
    for (let n = 0; ; n++) {
      const top = heap.pop();
      if (!top) break;
      const [t, i] = top;
      if (t > end) break;
      if ((n & 1023) === 0 && o.maxWallSeconds !== undefined && (performance.now() - wall0) / 1000 > o.maxWallSeconds) {
        truncatedAt = (t - T0) / 1000;
        end = t;
        break;
      }
      while (nextTick <= t) {
        const a = performance.now();
        collector.tick(nextTick);
        collectorMs += performance.now() - a;
        nextTick += 5000;
      }
      if (t - progressLog >= 300_000) {
        progressLog = t;
        log(`  virtual minute ${((t - T0) / 60_000).toFixed(0)}: ${reports} reports`);
      }
      const d = devs[i] as Device;
      if (t !== d.wakeAt && d.plan.length === 0) continue;
      // Agent state changes due now.
      while (d.plan.length > 0 && (d.plan[0] as [number, AgentState])[0] <= t) {
        const [, state] = d.plan.shift() as [number, AgentState];
        const snap: DeviceSnapshot = { ...d.snap, state };
        if (state === 'receiving') {
          snap.pendingVersion = '1.5.0';
          snap.pendingSequence = 15n;
        }
        if (state === 'installed') {
          snap.installedVersion = '1.5.0';
          snap.installedSequence = 15n;
          delete snap.pendingVersion;
          delete snap.pendingSequence;
        }
        if (state === 'failed') snap.lastError = 'verify: image digest mismatch';
        if (d.reporter.changed(snap, t)) d.unshown.push(t);
        d.snap = snap;
      }
      const due = d.reporter.next(t);
      if (due) {
        const a = performance.now();
        const bytes = seal({ ...due, counter: d.counter++, publicKey: d.key.publicKey }, d.key.privateKey);
        const b = performance.now();
        const r = collector.ingest(bytes, undefined, t);
        collectorMs += performance.now() - b;
        signMs += b - a;
        reports += 1;
        if (r.accepted) accepted += 1;
        const wire = bytes.length + IP_UDP_OVERHEAD;
        bytesTotal += wire;
        if (t < steadyEnd && t >= T0 + 120_000) bytesSteady += wire;
        const w = Math.floor((t - T0) / 60_000);
        windowBytes.set(w, (windowBytes.get(w) ?? 0) + wire);
        for (const c of d.unshown) shows.push(t - c);
        d.unshown = [];
      }
      const nextPlan = d.plan.length > 0 ? (d.plan[0] as [number, AgentState])[0] : Infinity;
      d.wakeAt = Math.min(d.reporter.wakeAt(t), nextPlan);
      if (Number.isFinite(d.wakeAt)) heap.push(Math.max(t + 1, d.wakeAt), i);
      if (d.wakeAt <= t) d.wakeAt = t + 1;
    }
    collector.tick(end);
    const summary = collector.summary(end);
    // What a publisher does every second per release it serves: every enrolled device heard
    // recently, sorted by the release's signed 50 % rollout (a hash per device) and its reports.
    const next = summary.versions.length + 1;
    const release = { product: 'sensor', sequence: BigInt(next) + 100n, version: `${next}.0`, created: Math.floor(end / 1000) - 60, expires: Math.floor(end / 1000) + 86_400, rolloutBasisPoints: 5000, manifestId: new Uint8Array(32).fill(7) } as unknown as ManifestFields & { manifestId: Uint8Array };
    // The first recount hashes each device's rollout position; the publisher keeps them per release.
    const positions = new Map<string, number>();
    const f0 = performance.now();
    let publisherRecount = releaseDemand(release, collector.heard(end), Math.floor(end / 1000), positions);
    const publisherFirstRecountMs = performance.now() - f0;
    const r0 = performance.now();
    const rounds = 20;
    for (let k = 0; k < rounds; k++) publisherRecount = releaseDemand(release, collector.heard(end), Math.floor(end / 1000), positions);
    const publisherRecountMs = (performance.now() - r0) / rounds;
    // close() waits only for a socket; without one it closes the database synchronously.
    void collector.close();
    const rss = process.memoryUsage().rss;
    // A restarted collector reads its devices and counters back from the file. Collect garbage
    // around it so the heap figure is the collector's own.
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    gc();
    const before = process.memoryUsage().heapUsed;
    const a = performance.now();
    const again = new Collector({ product: 'sensor', db, registry, budget: o.budget, now: () => end });
    const restartLoadMs = performance.now() - a;
    gc();
    const restartHeap = process.memoryUsage().heapUsed - before;
    const loaded = again.devices().length;
    void again.close();
    if (loaded !== o.devices) throw new Error(`restart loaded ${loaded} devices, expected ${o.devices}`);
    shows.sort((x, y) => x - y);
    const virtualSeconds = (end - T0) / 1000;
    const steadySeconds = (steadyEnd - T0 - 120_000) / 1000;
    const budgetBps = (o.budget.bitsPerSecond ?? 256_000) as number;
    return {
      devices: o.devices,
      virtualSeconds,
      reports,
      accepted,
      dropped: Object.values(collector.drops).reduce((x, y) => x + y, 0),
      heartbeatMs: (devs[0] as Device).reporter.intervalMs,
      bpsMean: (bytesTotal * 8) / virtualSeconds,
      bpsSteady: steadySeconds > 0 ? (bytesSteady * 8) / steadySeconds : 0,
      bpsMax60s: (Math.max(...windowBytes.values()) * 8) / 60,
      budgetBps,
      showMs: { p50: quantile(shows, 0.5), p95: quantile(shows, 0.95), p99: quantile(shows, 0.99), max: shows.at(-1) ?? 0, changes: shows.length },
      collectorMsPerReport: collectorMs / Math.max(1, reports),
      collectorCoreShare: collectorMs / 1000 / virtualSeconds,
      signMsPerReport: signMs / Math.max(1, reports),
      wallSeconds: (performance.now() - wall0) / 1000,
      rssMiB: rss / 2 ** 20,
      restartLoadMs,
      restartHeapMiB: restartHeap / 2 ** 20,
      publisherRecountMs,
      publisherFirstRecountMs,
      publisherRecount,
      dbMiB: statSync(db).size / 2 ** 20 + (statSafe(`${db}-wal`) ?? 0) / 2 ** 20,
      finalStates: summary.states,
      versions: summary.versions,
      quietAtEnd: summary.health.quiet,
      ...(truncatedAt !== undefined ? { truncatedAt } : {}),
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function statSafe(p: string): number | undefined {
  try {
    return statSync(p).size;
  } catch {
    return undefined;
  }
}
