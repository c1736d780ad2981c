// The agent's persisted state machine (docs/agent.md "State machine"). One JSON file,
// agent-state.json in the state directory, replaced atomically (temporary file, fsync, rename,
// fsync of the directory) BEFORE the work of each state starts, so that after a crash the agent
// resumes in the state it was in and re-runs that state's work, which is idempotent.
//
// Loop guard (after Mender's state-loop counter): every entry of a state increments a counter kept
// in the file for the release in progress. A state entered more than `loopLimit` times for one
// release is not run again: the release is rolled back (after the switch) or abandoned (before
// it), and a rollback that itself loops ends in `failed`. A restart loop therefore always ends.
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { storageError } from '../fsutil/index.js';
import { StorageError } from '../errors.js';
import { AgentError } from './errors.js';
import type { FaultInjector } from './fault.js';
import { writeFileAtomic } from './fsops.js';
import type { InstallSettings } from './install/index.js';

export const PHASES = ['idle', 'download', 'verify', 'install', 'staged', 'switch', 'reboot-pending', 'health-check', 'commit', 'rollback', 'failed'] as const;
export type Phase = (typeof PHASES)[number];

/** States not counted by the loop guard: resting states, and waiting for the switch time. */
const UNCOUNTED: ReadonlySet<Phase> = new Set<Phase>(['idle', 'failed', 'staged', 'reboot-pending']);

/** The release in progress, as much as a restarted agent needs to finish or undo it. */
export interface ReleaseRecord {
  /** SHA-256 of the signed manifest body (hex): names the release. */
  manifestId: string;
  sequence: string;
  version: string;
  /** The signed manifest and the staged image, inside the state directory. */
  manifestFile: string;
  imageFile: string;
  /** Install settings in force when the release started: a changed config applies to the next one. */
  install: InstallSettings;
  /** What the install method needs to remember (e.g. which A/B slot was active). */
  methodData: Record<string, string>;
  /** The release in place before this one. */
  previousSequence: string;
  previousVersion: string | null;
  /** Signed switch time (unix seconds), when the device has a trusted clock. */
  switchAt?: number;
  /** Why it is being rolled back or abandoned. */
  reason?: string;
  code?: string;
}

export type OutcomeKind = 'installed' | 'rolled-back' | 'failed';

export interface Outcome {
  result: OutcomeKind;
  manifestId: string;
  sequence: string;
  version: string;
  reason?: string;
  code?: string;
  /** Installed outcomes: what was in place before, and the method's data, for a halt's rollback. */
  previousVersion?: string | null;
  previousSequence?: string;
  methodData?: Record<string, string>;
}

/** A committed release rolled back by a signed HALT: the version running now is the previous one. */
export interface Reverted {
  manifestId: string;
  /** The halted release. */
  haltedVersion: string;
  haltedSequence: string;
  /** What runs now (null: nothing was installed before). */
  version: string | null;
  sequence: string;
}

export interface AgentStateData {
  phase: Phase;
  release?: ReleaseRecord;
  /** Entries of each state for the release in progress (loop guard). */
  entries: Partial<Record<Phase, number>>;
  /** Releases (manifest ids) that failed their health check or rolled back: never tried again. */
  failed: string[];
  /** Releases abandoned before the switch (download, install, re-verify failed): tried at most maxAttempts times. */
  attempts: Record<string, number>;
  /** Releases (manifest ids) stopped by a signed HALT: never taken. */
  halted?: string[];
  /** Set when a HALT rolled a committed release back; cleared by the next install. */
  reverted?: Reverted;
  last?: Outcome;
}

export const STATE_FILE = 'agent-state.json';
/** The lists above keep their newest entries only, so the file stays small. */
const MAX_REMEMBERED = 64;

function checksum(body: string): string {
  return createHash('sha256').update(body).digest('hex');
}

export interface TransitionPatch {
  release?: ReleaseRecord | null;
  last?: Outcome;
  failed?: string;
  attempt?: string;
  halted?: string;
  /** null clears it. */
  reverted?: Reverted | null;
}

export class AgentStateStore {
  private constructor(
    readonly dir: string,
    private state: AgentStateData,
    private readonly faults: FaultInjector,
    readonly loopLimit: number,
  ) {}

  static open(dir: string, faults: FaultInjector, loopLimit = 5): AgentStateStore {
    try {
      mkdirSync(dir, { recursive: true, mode: 0o700 });
    } catch (err) {
      throw storageError(err, 'create', dir);
    }
    return new AgentStateStore(dir, readAgentState(dir) ?? { phase: 'idle', entries: {}, failed: [], attempts: {} }, faults, loopLimit);
  }

  get data(): Readonly<AgentStateData> {
    return this.state;
  }

  get phase(): Phase {
    return this.state.phase;
  }

  get release(): ReleaseRecord | undefined {
    return this.state.release;
  }

  /** True when entering `phase` once more would break the loop guard. */
  exhausted(phase: Phase): boolean {
    return !UNCOUNTED.has(phase) && (this.state.entries[phase] ?? 0) >= this.loopLimit;
  }

  /** Persist `patch` without a transition (the phase and its loop counters stay as they are). */
  note(patch: Omit<TransitionPatch, 'release'>): void {
    const cur = this.state;
    const next: AgentStateData = { ...cur, entries: { ...cur.entries }, failed: [...cur.failed], attempts: { ...cur.attempts } };
    if (patch.last) next.last = patch.last;
    if (patch.failed !== undefined && !next.failed.includes(patch.failed)) next.failed = [...next.failed, patch.failed].slice(-MAX_REMEMBERED);
    const halted = cur.halted ?? [];
    if (patch.halted !== undefined && !halted.includes(patch.halted)) next.halted = [...halted, patch.halted].slice(-MAX_REMEMBERED);
    if (patch.reverted === null) delete next.reverted;
    else if (patch.reverted) next.reverted = patch.reverted;
    writeFileAtomic(join(this.dir, STATE_FILE), formatAgentState(next), this.faults, 'state:note');
    this.state = next;
  }

  /**
   * Persist entry into `phase` (fault step `state:PHASE`). Throws ERR_STATE_LOOP, without writing,
   * when the loop guard forbids it. Leaving the release (release: null) clears the counters.
   */
  enter(phase: Phase, patch: TransitionPatch = {}): void {
    if (this.exhausted(phase)) {
      throw new AgentError(`state '${phase}' entered ${this.state.entries[phase] ?? 0} times for this release`, 'ERR_STATE_LOOP');
    }
    const next: AgentStateData = {
      phase,
      entries: { ...this.state.entries },
      failed: [...this.state.failed],
      attempts: { ...this.state.attempts },
    };
    const release = patch.release === null ? undefined : (patch.release ?? this.state.release);
    if (release) next.release = release;
    if (patch.release === null) next.entries = {};
    else if (!UNCOUNTED.has(phase)) next.entries[phase] = (next.entries[phase] ?? 0) + 1;
    const last = patch.last ?? this.state.last;
    if (last) next.last = last;
    const halted = this.state.halted ?? [];
    if (patch.halted !== undefined && !halted.includes(patch.halted)) next.halted = [...halted, patch.halted].slice(-MAX_REMEMBERED);
    else if (halted.length > 0) next.halted = [...halted];
    const reverted = patch.reverted === null ? undefined : (patch.reverted ?? this.state.reverted);
    if (reverted) next.reverted = reverted;
    if (patch.failed !== undefined && !next.failed.includes(patch.failed)) next.failed = [...next.failed, patch.failed].slice(-MAX_REMEMBERED);
    if (patch.attempt !== undefined) {
      next.attempts[patch.attempt] = (next.attempts[patch.attempt] ?? 0) + 1;
      const keys = Object.keys(next.attempts);
      for (const k of keys.slice(0, Math.max(0, keys.length - MAX_REMEMBERED))) delete next.attempts[k];
    }
    writeFileAtomic(join(this.dir, STATE_FILE), formatAgentState(next), this.faults, `state:${phase}`);
    this.state = next;
  }
}

export function formatAgentState(d: AgentStateData): string {
  const body = JSON.stringify({ version: 1, ...d });
  return `${body}\n${checksum(body)}\n`;
}

/**
 * Read the state file of `dir`; undefined when there is none yet. A file that fails its checksum
 * is refused (ERR_STATE_CORRUPT): guessing could repeat a switch or skip a rollback.
 */
export function readAgentState(dir: string): AgentStateData | undefined {
  const path = join(dir, STATE_FILE);
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw storageError(err, 'read', path);
  }
  const corrupt = (why: string): never => {
    throw new StorageError(`${path} is corrupt (${why})`, 'ERR_STATE_CORRUPT');
  };
  const [body, sum] = text.split('\n');
  if (body === undefined || sum === undefined || checksum(body) !== sum) corrupt('checksum mismatch');
  let o: Record<string, unknown> = {};
  try {
    o = JSON.parse(body as string) as Record<string, unknown>;
  } catch {
    corrupt('not JSON');
  }
  if (o.version !== 1 || typeof o.phase !== 'string' || !(PHASES as readonly string[]).includes(o.phase)) corrupt('bad phase');
  if (!Array.isArray(o.failed) || typeof o.entries !== 'object' || typeof o.attempts !== 'object') corrupt('bad fields');
  const { version: _v, ...rest } = o;
  void _v;
  return rest as unknown as AgentStateData;
}
