// The agent's fleet status: agentSnapshot's rules for every phase and the idle cases (pure),
// reportStatus driven by a real Agent installing local bundles (the snapshots go to a recorder
// around the real StatusReporter core), and the config's `status` key.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Agent, type AgentStatus, type ReleaseInfo } from '../../src/agent/agent.js';
import { parseAgentConfig } from '../../src/agent/config.js';
import type { DownloadProgress } from '../../src/agent/multicast.js';
import { agentSnapshot, packageVersion, reportStatus, type AgentSnapshotInput } from '../../src/agent/report.js';
import { BundleSource, type Offer, type ReleaseSource } from '../../src/agent/source.js';
import { PHASES, type Phase, type ReleaseRecord } from '../../src/agent/state.js';
import type { Manifest } from '../../src/crypto/manifest.js';
import { UsageError } from '../../src/errors.js';
import { DEFAULT_BUDGET, StatusReporter, type DeviceSnapshot } from '../../src/fleet/reporter.js';
import type { AgentState } from '../../src/wire/status.js';
import { cli, configFor, makeDevice, makeRelease } from './helpers.js';

const CONFIG = { deviceId: 'dev-7', product: 'sensor', deviceClass: 'outdoor' };

const REL: ReleaseRecord = {
  manifestId: 'ab'.repeat(32),
  sequence: '5',
  version: '5.0',
  manifestFile: '/s/releases/x.manifest',
  imageFile: '/s/releases/x.image',
  install: { method: 'file', target: '/opt/fw' },
  methodData: {},
  previousSequence: '4',
  previousVersion: '4.0',
};

function status(over: Partial<AgentStatus> = {}): AgentStatus {
  return { phase: 'idle', entries: {}, failed: [], attempts: {}, installedSequence: '4', installedVersion: '4.0', runningVersion: '4.0', ...over };
}

function snap(input: Partial<AgentSnapshotInput> & { status: AgentStatus }): DeviceSnapshot {
  return agentSnapshot({ config: CONFIG, agentVersion: '9.9.9', ...input });
}

test('agentSnapshot: each phase of a release in progress maps to its state, with the release pending', () => {
  const want: Record<Exclude<Phase, 'idle'>, AgentState> = {
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
  assert.deepEqual(PHASES.filter((p) => p !== 'idle').sort(), Object.keys(want).sort(), 'every phase has a rule');
  for (const [phase, state] of Object.entries(want) as [Exclude<Phase, 'idle'>, AgentState][]) {
    const s = snap({ status: status({ phase, release: REL }), progress: 0.25 });
    const expect: DeviceSnapshot = {
      deviceId: 'dev-7',
      product: 'sensor',
      deviceClass: 'outdoor',
      installedVersion: '4.0',
      installedSequence: 4n,
      state,
      pendingVersion: '5.0',
      pendingSequence: 5n,
      agentVersion: '9.9.9',
    };
    // Progress belongs to the download only.
    if (phase === 'download') expect.progress = 0.25;
    assert.deepEqual(s, expect, phase);
  }
  // A release abandoned before its switch says why, as the outcome will.
  const failed = snap({ status: status({ phase: 'failed', release: { ...REL, reason: 'no space left', code: 'ERR_STORAGE_FULL' } }) });
  assert.equal(failed.lastError, 'ERR_STORAGE_FULL: no space left');
  // Progress is clamped to 0..1 and unknown progress is left out.
  assert.equal(snap({ status: status({ phase: 'download', release: REL }), progress: 1.7 }).progress, 1);
  assert.equal('progress' in snap({ status: status({ phase: 'download', release: REL }) }), false);
  // A rollout wait does not hide a release in progress.
  assert.equal(snap({ status: status({ phase: 'verify', release: REL }), waiting: { release: { version: '6', sequence: '6', manifestId: 'cd'.repeat(32) } } }).state, 'verifying');
});

test('agentSnapshot: idle is waiting for a rollout, the last failure, installed, or idle when nothing was ever installed', () => {
  const r6: ReleaseInfo = { version: '6.0', sequence: '6', manifestId: 'cd'.repeat(32) };
  const waiting = snap({ status: status(), waiting: { release: r6 } });
  assert.deepEqual([waiting.state, waiting.pendingVersion, waiting.pendingSequence, waiting.lastError], ['waiting', '6.0', 6n, undefined]);

  const outcome = { manifestId: REL.manifestId, version: '5.0', sequence: '5' };
  const failed = snap({ status: status({ last: { result: 'failed', ...outcome, reason: 'download interrupted', code: 'ERR_INTERRUPTED_DOWNLOAD' } }) });
  assert.deepEqual([failed.state, failed.pendingVersion, failed.pendingSequence, failed.lastError], ['failed', '5.0', 5n, 'ERR_INTERRUPTED_DOWNLOAD: download interrupted']);
  const rolled = snap({ status: status({ last: { result: 'rolled-back', ...outcome, reason: 'health check exited 3' } }) });
  assert.deepEqual([rolled.state, rolled.pendingVersion, rolled.lastError], ['rolled-back', '5.0', 'health check exited 3']);
  // A rollout wait for a newer release shows over an old failure.
  assert.equal(snap({ status: status({ last: { result: 'failed', ...outcome } }), waiting: { release: r6 } }).state, 'waiting');

  const installed = snap({ status: status({ last: { result: 'installed', ...outcome, sequence: '4', version: '4.0' } }) });
  assert.deepEqual(installed, { deviceId: 'dev-7', product: 'sensor', deviceClass: 'outdoor', installedVersion: '4.0', installedSequence: 4n, state: 'installed', agentVersion: '9.9.9' });

  // After a HALT's rollback the previous version runs; the anti-rollback sequence stays.
  const halted = snap({
    status: status({
      installedSequence: '5',
      installedVersion: '5.0',
      runningVersion: '4.0',
      last: { result: 'rolled-back', ...outcome, reason: 'halted by the publisher', code: 'ERR_HALTED' },
    }),
  });
  assert.deepEqual([halted.state, halted.installedVersion, halted.installedSequence, halted.pendingVersion, halted.lastError], ['rolled-back', '4.0', 5n, '5.0', 'ERR_HALTED: halted by the publisher']);
  const reverted = snap({ status: status({ installedSequence: '5', installedVersion: '5.0', runningVersion: null, last: { result: 'rolled-back', ...outcome } }) });
  assert.equal(reverted.installedVersion, '', 'nothing runs: an empty version');

  const fresh = agentSnapshot({ status: status({ installedSequence: '0', installedVersion: null, runningVersion: null }), config: { deviceId: 'd', product: 'p' } });
  assert.deepEqual(fresh, { deviceId: 'd', product: 'p', installedVersion: '', installedSequence: 0n, state: 'idle', agentVersion: packageVersion() });
  const pkg = JSON.parse(readFileSync(fileURLToPath(new URL('../../../package.json', import.meta.url)), 'utf8')) as { version: string };
  assert.equal(packageVersion(), pkg.version, 'the agent version is the package version');
});

/** Every snapshot, and the ones the real StatusReporter core counts as a change worth a report. */
class Recorder {
  readonly core = new StatusReporter({ budget: { minIntervalMs: 1 } });
  readonly all: DeviceSnapshot[] = [];
  readonly changes: DeviceSnapshot[] = [];
  update(s: DeviceSnapshot): void {
    this.all.push(s);
    if (this.core.changed(s, Date.now())) this.changes.push(s);
  }
  states(): AgentState[] {
    return this.changes.map((s) => s.state);
  }
}

/** A bundle whose download reports progress through a ProgressSource, as MulticastSource does. */
class ProgressBundle extends EventEmitter<{ progress: [DownloadProgress] }> implements ReleaseSource {
  readonly #inner: BundleSource;
  constructor(manifest: string, image: string) {
    super();
    this.#inner = new BundleSource(manifest, image);
  }
  offers(): AsyncIterable<Offer> {
    return this.#inner.offers();
  }
  async fetch(offer: Offer, m: Manifest, dest: string): Promise<void> {
    const ref = { version: m.version, sequence: m.sequence.toString(), manifestId: Buffer.from(m.manifestId).toString('hex') };
    this.emit('progress', { ...ref, manifestId: 'ee'.repeat(32), received: 9, needed: 10, fraction: 0.9 });
    this.emit('progress', { ...ref, received: 4, needed: 10, fraction: 0.4 });
    await this.#inner.fetch(offer, m, dest);
  }
}

test('reportStatus: a real agent installing bundles reports idle, then receiving, verifying, installing, confirming, installed; a failed health check ends in rolled-back', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'iotupd-agent-report-'));
  try {
    const d = makeDevice(dir, 'file');
    const config = parseAgentConfig(JSON.stringify(configFor('file')), d.config);
    config.healthCheck = { command: `cd ${dir} && ./check.sh file`, timeoutSeconds: 10, retries: 0, retryDelaySeconds: 0 };
    const agent = new Agent({ config });
    const rec = new Recorder();
    const src = new ProgressBundle(d.v1.manifestFile, d.v1.imageFile);
    const detach = reportStatus(agent, rec, { source: src });
    assert.deepEqual(rec.states(), ['idle'], 'the first snapshot at once');

    await agent.run(src);
    await agent.run(new BundleSource(d.v2.manifestFile, d.v2.imageFile));
    const path = ['receiving', 'verifying', 'installing', 'confirming', 'installed'];
    assert.deepEqual(rec.states(), ['idle', ...path, ...path]);
    const receiving = rec.changes.filter((s) => s.state === 'receiving').map((s) => [s.pendingVersion, s.pendingSequence, s.installedVersion]);
    assert.deepEqual(receiving, [['v1', 1n, ''], ['v2', 2n, 'v1']]);
    // Progress of the release in progress (not of another one) rode along, and is no change.
    assert.deepEqual(rec.all.filter((s) => s.progress !== undefined).map((s) => [s.state, s.pendingVersion, s.progress]), [['receiving', 'v1', 0.4]]);
    const last = rec.changes.at(-1);
    assert.deepEqual([last?.installedVersion, last?.installedSequence, last?.pendingVersion], ['v2', 2n, undefined]);
    assert.equal(last?.agentVersion, packageVersion());

    // v3 fails its health check: rolled back, with the reason and the release it was.
    const v3 = makeRelease(join(dir, 'rel'), 'v3bad', 3n);
    await agent.run(new BundleSource(v3.manifestFile, v3.imageFile));
    assert.deepEqual(rec.states().slice(1 + 2 * path.length), ['receiving', 'verifying', 'installing', 'confirming', 'installing', 'rolled-back']);
    const rb = rec.changes.at(-1);
    assert.deepEqual([rb?.installedVersion, rb?.installedSequence, rb?.pendingVersion, rb?.pendingSequence], ['v2', 2n, 'v3bad', 3n]);
    assert.match(rb?.lastError ?? '', /^ERR_HEALTH: /);

    // Detached: the agent's next moves are not reported.
    detach();
    const n = rec.all.length;
    await agent.run(new BundleSource(v3.manifestFile, v3.imageFile));
    assert.equal(rec.all.length, n);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('reportStatus: a rollout wait is reported as waiting with its release, until the release is taken', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'iotupd-agent-report-wait-'));
  try {
    const d = makeDevice(dir, 'file');
    const config = parseAgentConfig(JSON.stringify({ ...configFor('file'), healthCheck: undefined }), d.config);
    const agent = new Agent({ config });
    const rec = new Recorder();
    reportStatus(agent, rec);
    const waits: number[] = [];
    agent.on('waiting', (e) => waits.push(e.until));
    // The activation window opens in two seconds: the agent waits for it, then installs.
    const opens = Math.floor(Date.now() / 1000) + 2;
    const later = makeRelease(join(dir, 'rel'), 'vlater', 1n, { activation: { notBefore: opens, notAfter: opens + 3600 } });
    const r = await agent.run(new BundleSource(later.manifestFile, later.imageFile));
    assert.deepEqual(r.map((x) => x.result), ['installed']);
    assert.deepEqual(waits, [opens]);
    assert.deepEqual(rec.states(), ['idle', 'waiting', 'receiving', 'verifying', 'installing', 'confirming', 'installed']);
    const w = rec.changes[1];
    assert.deepEqual([w?.pendingVersion, w?.pendingSequence], ['vlater', 1n]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('reportStatus: the first snapshot throws to the caller; later reporter errors go to onError, never to the agent', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'iotupd-agent-report-err-'));
  try {
    const d = makeDevice(dir, 'file');
    const config = parseAgentConfig(JSON.stringify({ ...configFor('file'), healthCheck: undefined }), d.config);
    const agent = new Agent({ config });
    // A reporter for another product refuses every snapshot (FleetReporter does the same).
    assert.throws(() => reportStatus(agent, { update: () => { throw new UsageError('no'); } }), UsageError);
    assert.equal(agent.listenerCount('state'), 0, 'nothing stays attached');
    let calls = 0;
    const errors: string[] = [];
    reportStatus(agent, { update: () => { if (calls++ > 0) throw new UsageError(`refused ${calls}`); } }, { onError: (e) => errors.push(e.message) });
    const r = await agent.run(new BundleSource(d.v1.manifestFile, d.v1.imageFile));
    assert.deepEqual(r.map((x) => x.result), ['installed'], 'the install went on');
    assert.ok(errors.length >= 6, errors.join(', '));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('config: status false turns reports off, a budget is read and mapped, mistakes name the key', async () => {
  const base = configFor('file');
  const file = '/etc/iotupd/agent.json';
  const parse = (extra: Record<string, unknown>) => parseAgentConfig(JSON.stringify({ ...base, ...extra }), file);
  assert.deepEqual(parse({}).status, { budget: DEFAULT_BUDGET }, 'default: on, the default budget');
  assert.deepEqual(parse({ status: true }).status, { budget: DEFAULT_BUDGET });
  assert.equal(parse({ status: false }).status, false);
  const st = parse({ status: { budget: { bitsPerSecond: 64_000, fleetSize: 20_000, minIntervalSeconds: 45, burst: 2 }, channel: 'plant-3/status' } }).status;
  assert.deepEqual(st, { budget: { ...DEFAULT_BUDGET, bitsPerSecond: 64_000, fleetSize: 20_000, minIntervalMs: 45_000, burst: 2 }, channel: 'plant-3/status' });
  assert.deepEqual(parse({ status: { budget: { fleetSize: 50 } } }).status, { budget: { ...DEFAULT_BUDGET, fleetSize: 50 } });
  // A device id that no report can carry is refused while reports are on, accepted when off.
  assert.equal(parse({ deviceId: 'has space', status: false }).deviceId, 'has space');

  const cases: [Record<string, unknown>, RegExp][] = [
    [{ status: 'on' }, /'status' must be false or an object/],
    [{ status: { budgt: {} } }, /'status.budgt' is not a known key/],
    [{ status: { budget: { minIntervalMs: 10 } } }, /'status.budget.minIntervalMs' is not a known key/],
    [{ status: { budget: { bitsPerSecond: 0 } } }, /'status.budget.bitsPerSecond' must be a number from 1 to/],
    [{ status: { budget: { fleetSize: 2.5 } } }, /'status.budget.fleetSize' must be an integer/],
    [{ status: { budget: { minIntervalSeconds: 0.01 } } }, /'status.budget.minIntervalSeconds' must be a number from 0.1 to 86400/],
    [{ status: { budget: { burst: 0 } } }, /'status.budget.burst' must be a number from 1 to 1000/],
    [{ status: { channel: '' } }, /'status.channel' must be a non-empty string/],
    [{ deviceId: 'has space' }, /'deviceId' gives the device id 'has space', which status reports cannot carry/],
    [{ product: 'a/b' }, /'product' has spaces or '\/', so it has no status channel/],
  ];
  for (const [extra, want] of cases) {
    assert.throws(
      () => parse(extra),
      (e: unknown) => e instanceof UsageError && e.code === 'ERR_CONFIG' && want.test(e.message) && !e.message.includes('\n'),
      String(want),
    );
  }
  // The CLI: one line naming the key, exit 2.
  const dir = mkdtempSync(join(tmpdir(), 'iotupd-agent-status-config-'));
  try {
    const f = join(dir, 'agent.json');
    writeFileSync(f, JSON.stringify({ ...base, status: { budget: { burst: -1 } } }));
    const r = await cli({ dir }, ['agent', 'status', '--config', f]);
    assert.equal(r.code, 2);
    assert.match(r.err, /^iotupd: config .*agent\.json: 'status\.budget\.burst' must be a number from 1 to 1000\n$/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
