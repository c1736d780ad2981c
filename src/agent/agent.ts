// The device agent (docs/agent.md): hears offers from a ReleaseSource, decides by the signed
// policy, then drives the persisted state machine of src/agent/state.ts:
//
//   idle -> download -> verify -> install [-> staged] -> switch [-> reboot-pending] -> health-check
//        -> commit -> idle
//   health-check fails, switch fails, or a post-switch state loops -> rollback -> idle
//   failure before the switch (download, verify, install, re-verify) -> failed -> idle
//
// The state is persisted before each state's work; after a crash `resume()` re-enters the state
// in the file (counted by the loop guard) and re-runs its idempotent work.
import { EventEmitter } from 'node:events';
import { mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { ascii, equalBytes, toHex } from '../crypto/bytes.js';
import { loadPublicKey } from '../crypto/keys.js';
import { verifyManifest, type Manifest } from '../crypto/manifest.js';
import { DeviceState } from '../crypto/rollback.js';
import { TrustStore } from '../crypto/trust.js';
import { IotupdError, SecurityError } from '../errors.js';
import { storageError } from '../fsutil/index.js';
import { describeResult, runCommand } from './command.js';
import type { AgentConfig } from './config.js';
import { AgentError } from './errors.js';
import { noFaults, type FaultInjector } from './fault.js';
import { exists, hashFile, removeDurable, writeFileAtomic } from './fsops.js';
import { runHealthCheck } from './health.js';
import { createInstallMethod, type InstallContext, type InstallMethod } from './install/index.js';
import { decideRollout, type SkipReason } from './rollout.js';
import type { Offer, ReleaseSource } from './source.js';
import { AgentStateStore, type AgentStateData, type Outcome, type Phase, type ReleaseRecord } from './state.js';

export interface AgentOptions {
  config: AgentConfig;
  /** Fault injection for the crash tests; none by default. */
  faults?: FaultInjector;
  /** Unix seconds from a trusted clock, or undefined. Default: the system clock, or undefined when config.clock is 'untrusted'. */
  now?: () => number | undefined;
  /** Pinned keys; default: the key files of config.trust. */
  trust?: TrustStore;
  /** Wait (abortably) when the rollout says wait; false returns 'waiting' at once. Default true. */
  waitForRollout?: boolean;
}

export interface ReleaseInfo {
  version: string;
  sequence: string;
  manifestId: string;
}

export interface SkipEvent extends Partial<ReleaseInfo> {
  reason: SkipReason | 'invalid' | 'attempts' | 'halted';
  detail: string;
  code?: string;
}

/** A signed HALT, as the agent needs it (src/announce/filter.ts Halt has these fields). */
export interface HaltNotice {
  manifestId: Uint8Array | string;
  sequence: bigint | string;
  rollback: boolean;
}

export interface HaltEvent {
  manifestId: string;
  sequence: string;
  version?: string;
  /**
   * stopped: the release in progress was abandoned before its switch (or rolled back, when the
   * halt came after it); rolled-back: the committed release was replaced by the previous version;
   * not-revertible: rollback asked, but the install method no longer has the previous version;
   * recorded: only remembered (never taken from now on).
   */
  action: 'stopped' | 'rolled-back' | 'not-revertible' | 'recorded';
  detail: string;
}

/** A rollout wait: the agent sleeps until `until` (unix seconds) before it takes `release`. */
export interface WaitingEvent {
  release: ReleaseInfo;
  until: number;
  detail: string;
}

/** `agent.status`: the persisted state plus what is installed and what runs. */
export type AgentStatus = AgentStateData & { installedSequence: string; installedVersion: string | null; runningVersion: string | null };

export interface AgentEvents {
  state: [{ phase: Phase; release?: ReleaseInfo }];
  progress: [{ phase: Phase; message: string }];
  /** The rollout says wait (a later wave, a window not open yet); it ends at the next state or skipped event. */
  waiting: [WaitingEvent];
  installed: [Outcome];
  'rolled-back': [Outcome];
  failed: [Outcome];
  skipped: [SkipEvent];
  halted: [HaltEvent];
}

export type AgentResult =
  | { result: 'idle' }
  | { result: 'installed' | 'rolled-back' | 'failed'; outcome: Outcome }
  | { result: 'skipped'; skip: SkipEvent }
  | { result: 'waiting'; until: number; detail: string }
  | { result: 'reboot-pending'; release: ReleaseInfo }
  /** An error left the release in `phase`; the next start resumes it. */
  | { result: 'interrupted'; phase: Phase; error: IotupdError };

/** States before the switch: a failure there abandons the release, the old version never left. */
const BEFORE_SWITCH: ReadonlySet<Phase> = new Set<Phase>(['download', 'verify', 'install', 'staged']);

function info(r: ReleaseRecord): ReleaseInfo {
  return { version: r.version, sequence: r.sequence, manifestId: r.manifestId };
}

function asIotupd(err: unknown): IotupdError {
  return err instanceof IotupdError ? err : new AgentError((err as Error)?.message ?? String(err), 'ERR_AGENT', { cause: err });
}

export class Agent extends EventEmitter<AgentEvents> {
  readonly config: AgentConfig;
  private readonly faults: FaultInjector;
  private readonly store: AgentStateStore;
  private readonly device: DeviceState;
  private readonly trust: TrustStore;
  private readonly now: () => number | undefined;
  private readonly waitForRollout: boolean;
  private running?: { ac: AbortController; done: Promise<void> };
  /** The release being handled and the controller a HALT aborts it with. */
  private current?: { id: string; ac: AbortController; halted: boolean };

  constructor(opts: AgentOptions) {
    super();
    this.config = opts.config;
    this.faults = opts.faults ?? noFaults;
    this.store = AgentStateStore.open(opts.config.stateDir, this.faults, opts.config.loopLimit);
    this.device = DeviceState.open(opts.config.stateDir, opts.config.product);
    this.trust = opts.trust ?? new TrustStore(opts.config.trust.map((f) => loadPublicKey(f)));
    this.now = opts.now ?? (opts.config.clock === 'trusted' ? () => Math.floor(Date.now() / 1000) : () => undefined);
    this.waitForRollout = opts.waitForRollout ?? true;
  }

  /** The persisted state and what is installed. */
  get status(): AgentStatus {
    const d = this.device.snapshot;
    const installedVersion = d.installedVersion ?? null;
    // After a halt's rollback the previous version runs; the anti-rollback sequence stays.
    const runningVersion = this.store.data.reverted ? this.store.data.reverted.version : installedVersion;
    return { ...this.store.data, installedSequence: d.installedSequence.toString(), installedVersion, runningVersion };
  }

  /** Take offers from `source` in the background until stop(). */
  start(source: ReleaseSource): void {
    if (this.running) throw new AgentError('agent already started', 'ERR_AGENT');
    const ac = new AbortController();
    const done = this.run(source, ac.signal).then(
      () => undefined,
      (err: unknown) => {
        if (!ac.signal.aborted) this.emit('progress', { phase: this.store.phase, message: `stopped: ${(err as Error).message}` });
      },
    );
    this.running = { ac, done };
  }

  async stop(): Promise<void> {
    const r = this.running;
    if (!r) return;
    this.running = undefined;
    r.ac.abort(new IotupdError('ERR_ABORTED', 'agent stopped'));
    await r.done;
  }

  /** Resume any release in progress, then handle each offer of `source` until it ends. */
  async run(source: ReleaseSource, signal: AbortSignal = new AbortController().signal): Promise<AgentResult[]> {
    const results: AgentResult[] = [];
    const first = await this.resume(signal);
    if (first.result !== 'idle') results.push(first);
    if (first.result === 'reboot-pending' || first.result === 'interrupted') return results;
    for await (const offer of source.offers(signal)) {
      const r = await this.handle(offer, source, signal);
      results.push(r);
      if (r.result === 'reboot-pending' || r.result === 'interrupted') break;
    }
    return results;
  }

  /** Finish or undo the release in progress after a restart. */
  async resume(signal?: AbortSignal): Promise<AgentResult> {
    if (this.store.phase === 'idle') return { result: 'idle' };
    return this.drive(true, signal);
  }

  /** Judge one offer and, if taken, install it through to commit or rollback. */
  async handle(offer: Offer, source: ReleaseSource, signal: AbortSignal = new AbortController().signal): Promise<AgentResult> {
    const pending = await this.resume(signal);
    if (pending.result === 'reboot-pending' || pending.result === 'interrupted') return pending;
    let m: Manifest;
    try {
      m = verifyManifest(offer.manifest, this.trust, this.device.policy(), this.now());
    } catch (err) {
      if (!(err instanceof SecurityError)) throw err;
      // A replay of what is installed (or older) is the common, harmless case of a refusal.
      const reason = err.code === 'ERR_ROLLBACK' ? 'not-newer' : err.code === 'ERR_WRONG_PRODUCT' ? 'wrong-product' : 'invalid';
      return this.skip({ reason, detail: `${offer.origin}: ${err.message}`, code: err.code });
    }
    const id = toHex(m.manifestId);
    const rel = { version: m.version, sequence: m.sequence.toString(), manifestId: id };
    if (this.store.data.halted?.includes(id)) return this.skip({ ...rel, reason: 'halted', detail: `release ${m.version} was halted by the publisher` });
    let switchAt: number | undefined;
    for (;;) {
      const d = decideRollout(m, this.profile(), this.now());
      if (d.action === 'skip') return this.skip({ ...rel, reason: d.reason, detail: d.detail });
      if (d.action === 'take') {
        switchAt = d.switchAt;
        break;
      }
      if (!this.waitForRollout) return { result: 'waiting', until: d.until, detail: d.detail };
      this.emit('progress', { phase: 'idle', message: `release ${m.version}: ${d.detail}; waiting` });
      this.emit('waiting', { release: rel, until: d.until, detail: d.detail });
      await this.sleepUntil(d.until, signal);
    }
    if ((this.store.data.attempts[id] ?? 0) >= this.config.maxAttempts) {
      return this.skip({ ...rel, reason: 'attempts', detail: `release ${m.version} was abandoned ${this.config.maxAttempts} times here` });
    }

    const dir = join(this.config.stateDir, 'releases');
    try {
      mkdirSync(dir, { recursive: true, mode: 0o700 });
      // Nothing is in progress here: whatever is staged was left by a crash before its release
      // was recorded (stage-manifest precedes state:download).
      for (const f of readdirSync(dir)) removeDurable(join(dir, f), this.faults, 'drop-stale');
    } catch (err) {
      throw storageError(err, 'create', dir);
    }
    const manifestFile = join(dir, `${id}.manifest`);
    const imageFile = join(dir, `${id}.image`);
    writeFileAtomic(manifestFile, m.bytes, this.faults, 'stage-manifest');
    const method = createInstallMethod(this.config.install);
    const before = this.device.snapshot;
    const record: ReleaseRecord = {
      ...rel,
      manifestFile,
      imageFile,
      install: this.config.install,
      methodData: method.prepare(),
      previousSequence: before.installedSequence.toString(),
      previousVersion: before.installedVersion ?? null,
    };
    if (switchAt !== undefined) record.switchAt = switchAt;
    // The release's own controller: aborted by the caller's signal, or by a HALT (halt()).
    const cur = { id, ac: new AbortController(), halted: false };
    const onOuter = () => cur.ac.abort(signal.reason);
    signal.addEventListener('abort', onOuter, { once: true });
    if (signal.aborted) onOuter();
    this.current = cur;
    const rs = cur.ac.signal;
    try {
      this.enter('download', { release: record });
      try {
        this.faults.step('stage-image');
        await source.fetch(offer, m, imageFile, rs);
      } catch (err) {
        if (signal.aborted) throw err;
        if (cur.halted || (err instanceof IotupdError && err.code === 'ERR_HALTED')) return await this.haltedInProgress();
        return await this.abandon(record, asIotupd(err));
      }
      this.enter('verify');
      try {
        return await this.drive(false, rs);
      } catch (err) {
        if (signal.aborted || !cur.halted) throw err;
        return await this.haltedInProgress();
      }
    } finally {
      this.current = undefined;
      signal.removeEventListener('abort', onOuter);
    }
  }

  /**
   * A signed HALT from the publisher (docs/agent.md "Halts"). The release is remembered and never
   * taken. Not installed yet: the release in progress is stopped (abandoned before its switch;
   * rolled back if the halt came after it began). Installed and committed, with the rollback flag:
   * the version before it is made active again when the install method still has it, as local
   * recovery: the anti-rollback sequence stays where it is, so nothing lower is ever taken from
   * the network.
   */
  async halt(h: HaltNotice): Promise<HaltEvent> {
    const id = typeof h.manifestId === 'string' ? h.manifestId : toHex(h.manifestId);
    const sequence = h.sequence.toString();
    const ev = (action: HaltEvent['action'], detail: string, version?: string): HaltEvent => {
      const e: HaltEvent = { manifestId: id, sequence, action, detail };
      if (version !== undefined) e.version = version;
      this.emit('halted', e);
      return e;
    };
    const known = this.store.data.halted?.includes(id) ?? false;
    if (!known) this.store.note({ halted: id });
    const cur = this.current;
    const r = this.store.release;
    if (cur && cur.id === id && r) {
      // After the switch, only a rollback halt interrupts (a plain halt lets the switched release finish).
      if (BEFORE_SWITCH.has(this.store.phase) || h.rollback) {
        cur.halted = true;
        cur.ac.abort(new AgentError(`release ${r.version} was halted by the publisher`, 'ERR_HALTED'));
        return ev('stopped', `halted in state ${this.store.phase}`, r.version);
      }
      return ev('recorded', `halted after its switch, without rollback: it completes`, r.version);
    }
    if (known) return ev('recorded', 'halt already handled');
    const last = this.store.data.last;
    const d = this.device.snapshot;
    if (!h.rollback || d.installedManifest !== id) return ev('recorded', d.installedManifest === id ? 'installed here; the halt asks for no rollback' : 'not installed here', d.installedManifest === id ? (d.installedVersion ?? undefined) : undefined);
    if (this.store.phase !== 'idle' || !last || last.result !== 'installed' || last.manifestId !== id || !last.methodData) {
      // A later release began since (it may have overwritten what the previous version was kept in).
      this.store.note({ failed: id });
      return ev('not-revertible', 'a later install began since; the previous version is no longer known to be intact', last?.version);
    }
    const method = createInstallMethod(this.config.install);
    const ok = await method.revert(last.methodData, this.faults);
    if (!ok) {
      this.store.note({ failed: id });
      return ev('not-revertible', `the ${method.name} install method no longer has the previous version`, last.version);
    }
    const outcome: Outcome = { result: 'rolled-back', manifestId: id, version: last.version, sequence: last.sequence, reason: 'halted by the publisher', code: 'ERR_HALTED' };
    this.store.note({
      failed: id,
      last: outcome,
      reverted: { manifestId: id, haltedVersion: last.version, haltedSequence: last.sequence, version: last.previousVersion ?? null, sequence: last.previousSequence ?? '0' },
    });
    this.emit('rolled-back', outcome);
    return ev('rolled-back', `now running ${last.previousVersion ?? '(nothing)'} again`, last.version);
  }

  /** The release in progress was halted: abandon it before the switch, roll it back after. */
  private async haltedInProgress(): Promise<AgentResult> {
    const r = this.store.release;
    if (!r) return { result: 'idle' };
    const rec = { ...r, reason: 'halted by the publisher', code: 'ERR_HALTED' };
    if (BEFORE_SWITCH.has(this.store.phase) || this.store.phase === 'download' || this.store.phase === 'failed') {
      this.enter('failed', { release: rec, failed: r.manifestId });
      return this.finishFailed(rec);
    }
    // The switch may have begun: rollback is idempotent and safe whether it happened or not.
    this.enter('rollback', { release: rec });
    return this.drive(false);
  }

  private profile() {
    const p = {
      id: ascii(this.config.deviceId),
      product: this.config.product,
      installedSequence: this.device.installedSequence,
      failed: new Set(this.store.data.failed),
      timeFloor: this.device.timeFloor,
    } as Parameters<typeof decideRollout>[1];
    if (this.config.deviceClass !== undefined) p.deviceClass = this.config.deviceClass;
    if (this.config.hardware !== undefined) p.hardware = this.config.hardware;
    return p;
  }

  private skip(s: SkipEvent): AgentResult {
    this.emit('skipped', s);
    return { result: 'skipped', skip: s };
  }

  private async sleepUntil(t: number, signal: AbortSignal): Promise<void> {
    for (;;) {
      const now = this.now();
      if (now === undefined || now >= t) return;
      // In slices, so that a clock stepped forward is noticed.
      await sleep(Math.min(t - now, 60) * 1000, undefined, { signal, ref: true });
    }
  }

  private enter(phase: Phase, patch: Parameters<AgentStateStore['enter']>[1] = {}): void {
    this.store.enter(phase, patch);
    const r = this.store.release;
    this.emit('state', r ? { phase, release: info(r) } : { phase });
  }

  private env(r: ReleaseRecord): Record<string, string> {
    const env: Record<string, string> = {
      IOTUPD_IMAGE: r.imageFile,
      IOTUPD_MANIFEST: r.manifestFile,
      IOTUPD_MANIFEST_ID: r.manifestId,
      IOTUPD_VERSION: r.version,
      IOTUPD_SEQUENCE: r.sequence,
      IOTUPD_PRODUCT: this.config.product,
      IOTUPD_PREVIOUS_SEQUENCE: r.previousSequence,
      IOTUPD_PREVIOUS_VERSION: r.previousVersion ?? '',
      IOTUPD_STATE_DIR: this.config.stateDir,
      IOTUPD_METHOD: r.install.method,
    };
    if (r.install.method === 'ab') {
      const to = r.methodData.to === 'b' ? 1 : 0;
      env.IOTUPD_SLOT = r.methodData.to ?? '';
      env.IOTUPD_SLOT_PATH = r.install.slots[to];
    }
    return env;
  }

  private ctx(r: ReleaseRecord, signal?: AbortSignal): InstallContext {
    const c: InstallContext = { image: r.imageFile, env: this.env(r), methodData: r.methodData, faults: this.faults };
    if (signal) c.signal = signal;
    return c;
  }

  /** The verified manifest of the release in progress, read back from the state directory. */
  private manifestOf(r: ReleaseRecord): Manifest {
    let bytes: Uint8Array;
    try {
      bytes = new Uint8Array(readFileSync(r.manifestFile));
    } catch (err) {
      throw storageError(err, 'read', r.manifestFile);
    }
    // The release was valid when it started: its expiry does not interrupt it (now undefined),
    // and the installed sequence is the one it started from (commit may have raised it).
    const m = verifyManifest(bytes, this.trust, { product: this.config.product, installedSequence: BigInt(r.previousSequence) }, undefined);
    if (toHex(m.manifestId) !== r.manifestId) throw new SecurityError('staged manifest is not the release in progress', 'ERR_MISMATCH');
    return m;
  }

  private async checkImage(path: string, m: Manifest, signal?: AbortSignal): Promise<void> {
    const { hash, size } = await hashFile(path, signal);
    if (size !== m.size || !equalBytes(hash, m.objectHash)) {
      throw new AgentError(`${path} does not match the signed manifest (${size} bytes, SHA-256 ${toHex(hash).slice(0, 16)}...)`, 'ERR_IMAGE_CHANGED');
    }
  }

  /** Leave a release before its switch: the old version never stopped being the one in use. */
  private async abandon(r: ReleaseRecord, err: IotupdError): Promise<AgentResult> {
    const rec = { ...r, reason: err.message, code: err.code };
    this.enter('failed', { release: rec, attempt: r.manifestId });
    return this.finishFailed(rec);
  }

  private async finishFailed(r: ReleaseRecord): Promise<AgentResult> {
    try {
      await createInstallMethod(r.install).abort(this.ctx(r));
    } catch (err) {
      this.emit('progress', { phase: 'failed', message: `cleanup: ${(err as Error).message}` });
    }
    this.dropStaged(r);
    const outcome: Outcome = { result: 'failed', ...info(r) };
    if (r.reason !== undefined) outcome.reason = r.reason;
    if (r.code !== undefined) outcome.code = r.code;
    this.enter('idle', { release: null, last: outcome });
    this.emit('failed', outcome);
    return { result: 'failed', outcome };
  }

  private dropStaged(r: ReleaseRecord): void {
    removeDurable(r.imageFile, this.faults, 'drop-image');
    removeDurable(r.manifestFile, this.faults, 'drop-manifest');
  }

  /** Run the state machine from the persisted state until it rests. */
  private async drive(resumed: boolean, signal?: AbortSignal): Promise<AgentResult> {
    let first = resumed;
    for (;;) {
      const phase = this.store.phase;
      const r = this.store.release;
      if (phase === 'idle' || !r) {
        if (phase !== 'idle') this.enter('idle', { release: null });
        return { result: 'idle' };
      }
      const method = createInstallMethod(r.install);
      try {
        if (first) {
          first = false;
          // Re-entering after a restart counts against the loop guard.
          this.enter(phase);
          this.emit('progress', { phase, message: `resuming release ${r.version} in state ${phase}` });
        }
        const step = await this.work(phase, r, method, signal);
        if (step) return step;
      } catch (err) {
        if (signal?.aborted) throw err;
        const e = asIotupd(err);
        this.emit('progress', { phase, message: `${phase}: ${e.message}` });
        const next = this.afterError(phase, e);
        if (next === 'stay') return { result: 'interrupted', phase, error: e };
        const rec = { ...r, reason: e.message, code: e.code };
        if (next === 'abandon') return this.abandon(rec, e);
        if (next === 'rollback') {
          try {
            this.enter('rollback', { release: rec });
          } catch (loop) {
            if (!(loop instanceof AgentError && loop.code === 'ERR_STATE_LOOP')) throw loop;
            this.enter('failed', { release: { ...rec, reason: `rollback loops: ${e.message}`, code: 'ERR_STATE_LOOP' }, failed: r.manifestId });
          }
        } else {
          this.enter('failed', { release: rec, failed: r.manifestId });
        }
      }
    }
  }

  /** Where an error in `phase` leads. */
  private afterError(phase: Phase, e: IotupdError): 'abandon' | 'rollback' | 'failed' | 'stay' {
    if (BEFORE_SWITCH.has(phase)) return 'abandon';
    // A switch may have half happened: rollback is idempotent and safe whether it did or not.
    if (phase === 'switch' || phase === 'reboot-pending' || phase === 'health-check') return 'rollback';
    // commit and rollback are retried at the next start until the loop guard gives up. A commit
    // never turns into a rollback: the method may have dropped the old version already.
    if (e.code === 'ERR_STATE_LOOP') return 'failed';
    return 'stay';
  }

  /** The work of one state; returns a result when the machine rests, undefined to continue. */
  private async work(phase: Phase, r: ReleaseRecord, method: InstallMethod, signal?: AbortSignal): Promise<AgentResult | undefined> {
    const ctx = this.ctx(r, signal);
    switch (phase) {
      case 'download': {
        // Only a restart lands here: the offer is gone. A complete staged image goes on to be
        // verified; otherwise the release is abandoned and taken again when offered again.
        if (!exists(r.imageFile)) throw new AgentError('download interrupted', 'ERR_INTERRUPTED_DOWNLOAD');
        this.enter('verify');
        return undefined;
      }
      case 'verify': {
        const m = this.manifestOf(r);
        await this.checkImage(r.imageFile, m, signal);
        this.enter('install');
        return undefined;
      }
      case 'install': {
        this.manifestOf(r);
        this.emit('progress', { phase, message: `installing ${r.version} (${method.name})` });
        await method.install(ctx);
        const now = this.now();
        this.enter(r.switchAt !== undefined && now !== undefined && now < r.switchAt ? 'staged' : 'switch');
        return undefined;
      }
      case 'staged': {
        if (r.switchAt !== undefined) {
          this.emit('progress', { phase, message: `switching to ${r.version} at ${new Date(r.switchAt * 1000).toISOString()}` });
          await this.sleepUntil(r.switchAt, signal ?? new AbortController().signal);
        }
        this.enter('switch');
        return undefined;
      }
      case 'switch': {
        const m = this.manifestOf(r);
        // Re-verify what will become active, right before it does (docs/security.md item 8).
        await this.checkImage(method.writtenPath(ctx) ?? r.imageFile, m, signal);
        if (m.sequence <= this.device.installedSequence) {
          throw new AgentError(`sequence ${m.sequence} is not above installed ${this.device.installedSequence}`, 'ERR_ROLLBACK');
        }
        await method.switch(ctx);
        if (this.config.reboot.required && this.config.reboot.command) {
          this.enter('reboot-pending');
          await this.reboot(signal);
          return { result: 'reboot-pending', release: info(r) };
        }
        this.enter('health-check');
        return undefined;
      }
      case 'reboot-pending': {
        // Running again after the reboot: the health check decides.
        this.enter('health-check');
        return undefined;
      }
      case 'health-check': {
        const h = this.config.healthCheck;
        if (h) {
          const res = await runHealthCheck(h, this.env(r), signal, (n, detail) => this.emit('progress', { phase, message: `attempt ${n}: ${detail}` }));
          if (!res.ok) throw new AgentError(res.detail, 'ERR_HEALTH');
        }
        this.enter('commit');
        return undefined;
      }
      case 'commit': {
        // Record the sequence first (anti-rollback), then let the method drop the old version.
        // Re-run after a crash, a recorded sequence means the staged files may be gone already.
        if (this.device.installedSequence < BigInt(r.sequence)) {
          const m = this.manifestOf(r);
          this.faults.step('device-state');
          this.device.commit(m);
        }
        await method.commit(ctx);
        this.dropStaged(r);
        const outcome: Outcome = { result: 'installed', ...info(r), previousVersion: r.previousVersion, previousSequence: r.previousSequence, methodData: r.methodData };
        this.enter('idle', { release: null, last: outcome, reverted: null });
        this.emit('installed', outcome);
        return { result: 'installed', outcome };
      }
      case 'rollback': {
        await method.rollback(ctx);
        this.dropStaged(r);
        const outcome: Outcome = { result: 'rolled-back', ...info(r) };
        if (r.reason !== undefined) outcome.reason = r.reason;
        if (r.code !== undefined) outcome.code = r.code;
        // An image changed on disk is a local fault, not a bad release: counted as an attempt.
        const mark = r.code === 'ERR_IMAGE_CHANGED' ? { attempt: r.manifestId } : { failed: r.manifestId };
        this.enter('idle', { release: null, last: outcome, ...mark });
        this.emit('rolled-back', outcome);
        if (this.config.reboot.required && this.config.reboot.command) await this.reboot(signal);
        return { result: 'rolled-back', outcome };
      }
      case 'failed':
        return this.finishFailed(r);
      case 'idle':
        return { result: 'idle' };
    }
  }

  private async reboot(signal?: AbortSignal): Promise<void> {
    const command = this.config.reboot.command as string;
    this.emit('progress', { phase: this.store.phase, message: `rebooting: ${command}` });
    const r = await runCommand(command, { env: {}, timeoutMs: 120_000, ...(signal ? { signal } : {}) });
    if (r.code !== 0) throw new AgentError(`reboot command ${describeResult(r, 120_000)}`, 'ERR_REBOOT');
  }
}
