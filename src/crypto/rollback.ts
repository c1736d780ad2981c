// Anti-rollback state of a device: the highest sequence installed and a time floor, persisted
// atomically (temporary file, fsync, rename, fsync of the directory) so that a power cut leaves the
// old or the new state, never a torn one. A state file that fails its checksum is refused
// (fail closed): silently starting from zero would re-open every rollback.
import { createHash } from 'node:crypto';
import { closeSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, unlinkSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { StorageError } from '../errors.js';
import { toHex } from './bytes.js';
import type { Manifest, VerifyPolicy } from './manifest.js';

export interface DeviceStateData {
  product: string;
  /** Highest sequence installed; 0 before the first install. */
  installedSequence: bigint;
  /** Highest `created` (unix seconds) of any installed manifest: a clock that never goes back. */
  timeFloor: number;
  /** manifestId (hex) of the installed release, for the record. */
  installedManifest?: string;
  installedVersion?: string;
}

const FILE = 'iotupd-state.json';

function checksum(body: string): string {
  return createHash('sha256').update(body).digest('hex');
}

export class DeviceState {
  private constructor(
    readonly dir: string,
    private data: DeviceStateData,
  ) {}

  get path(): string {
    return join(this.dir, FILE);
  }

  get installedSequence(): bigint {
    return this.data.installedSequence;
  }

  get timeFloor(): number {
    return this.data.timeFloor;
  }

  get snapshot(): Readonly<DeviceStateData> {
    return { ...this.data };
  }

  /** Open the state in `dir`, creating an empty one (sequence 0) on first use. */
  static open(dir: string, product: string): DeviceState {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const path = join(dir, FILE);
    let text: string;
    try {
      text = readFileSync(path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
        return new DeviceState(dir, { product, installedSequence: 0n, timeFloor: 0 });
      }
      throw new StorageError(`cannot read ${path}: ${(err as Error).message}`, 'ERR_STORAGE', { cause: err });
    }
    const data = parseState(text, path);
    if (data.product !== product) {
      throw new StorageError(`${path} belongs to product '${data.product}', not '${product}'`, 'ERR_STATE_PRODUCT');
    }
    return new DeviceState(dir, data);
  }

  /** The policy fields that come from persisted state. */
  policy(base: Omit<VerifyPolicy, 'installedSequence' | 'timeFloor' | 'product'> = {}): VerifyPolicy {
    return { ...base, product: this.data.product, installedSequence: this.data.installedSequence, timeFloor: this.data.timeFloor };
  }

  /**
   * Record a successful install. Call only after the new image is verified and switched to; the
   * sequence must still be higher than the one recorded (re-checked here against races).
   */
  commit(m: Manifest): void {
    if (m.sequence <= this.data.installedSequence) {
      throw new StorageError(`refusing to record sequence ${m.sequence} <= ${this.data.installedSequence}`, 'ERR_ROLLBACK');
    }
    const next: DeviceStateData = {
      product: this.data.product,
      installedSequence: m.sequence,
      timeFloor: Math.max(this.data.timeFloor, m.created),
      installedManifest: toHex(m.manifestId),
      installedVersion: m.version,
    };
    writeAtomic(this.dir, FILE, formatState(next));
    this.data = next;
  }
}

function formatState(d: DeviceStateData): string {
  const body = JSON.stringify({
    version: 1,
    product: d.product,
    installedSequence: d.installedSequence.toString(),
    timeFloor: d.timeFloor,
    installedManifest: d.installedManifest ?? null,
    installedVersion: d.installedVersion ?? null,
  });
  return `${body}\n${checksum(body)}\n`;
}

function parseState(text: string, path: string): DeviceStateData {
  const corrupt = (why: string): never => {
    throw new StorageError(`${path} is corrupt (${why}); refusing to guess the installed sequence`, 'ERR_STATE_CORRUPT');
  };
  const [body, sum] = text.split('\n');
  if (body === undefined || sum === undefined || checksum(body) !== sum) corrupt('checksum mismatch');
  let j: unknown;
  try {
    j = JSON.parse(body as string);
  } catch {
    corrupt('not JSON');
  }
  const o = j as Record<string, unknown>;
  if (o.version !== 1 || typeof o.product !== 'string' || typeof o.installedSequence !== 'string' || !/^\d{1,20}$/.test(o.installedSequence)) {
    corrupt('bad fields');
  }
  if (typeof o.timeFloor !== 'number' || !Number.isSafeInteger(o.timeFloor) || o.timeFloor < 0) corrupt('bad time floor');
  const d: DeviceStateData = {
    product: o.product as string,
    installedSequence: BigInt(o.installedSequence as string),
    timeFloor: o.timeFloor as number,
  };
  if (typeof o.installedManifest === 'string') d.installedManifest = o.installedManifest;
  if (typeof o.installedVersion === 'string') d.installedVersion = o.installedVersion;
  return d;
}

/** temp file + fsync + rename + fsync(dir): POSIX atomic replacement. */
export function writeAtomic(dir: string, name: string, text: string): void {
  const tmp = join(dir, `.${name}.tmp-${process.pid}`);
  const final = join(dir, name);
  try {
    const fd = openSync(tmp, 'w', 0o600);
    try {
      writeSync(fd, text);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, final);
    const dfd = openSync(dir, 'r');
    try {
      fsyncSync(dfd);
    } finally {
      closeSync(dfd);
    }
  } catch (err) {
    try {
      unlinkSync(tmp);
    } catch {
      // already renamed or never created
    }
    throw new StorageError(`cannot write ${final}: ${(err as Error).message}`, 'ERR_STORAGE', { cause: err });
  }
}
