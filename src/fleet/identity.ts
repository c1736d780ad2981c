// A device's status identity: its own Ed25519 key and its report counter, both in its state dir
// (docs/fleet-status.md, "Authentication" and "Replay rule").
//
// The counter must never repeat, across restarts too, yet writing flash on every report would
// wear it. So the device persists a *reservation*: before using counter values up to C it writes
// C (temporary file, fsync, rename, fsync of the directory) and only then uses them; after a
// restart it continues from the stored C, skipping what was reserved and unused. The start value
// is also at least the wall clock in ms x 1000, so a device whose counter file was lost (but whose
// clock is right) is not locked out by its own earlier reports.
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { StorageError, UsageError } from '../errors.js';
import { generateSigningKey, loadSigningKey, saveKeyPair, type SigningKey } from '../crypto/keys.js';
import { writeAtomic } from '../crypto/rollback.js';
import { seal, type StatusBody } from '../wire/status.js';

/** Key files in the state dir: status-key.key (mode 0600) and status-key.pub (for enrolment). */
export const KEY_PREFIX = 'status-key';
export const COUNTER_FILE = 'status-counter';
const U64_MAX = (1n << 64n) - 1n;

export interface DeviceIdentityOptions {
  /** Counter values reserved per write of the counter file (default 1000). */
  reserve?: number;
  /** Wall clock in ms (default Date.now); only a floor for the counter after a restart. */
  now?: () => number;
}

export class DeviceIdentity {
  #next: bigint;
  #ceiling: bigint;
  #last: bigint | undefined;
  readonly #reserve: bigint;

  private constructor(
    readonly dir: string,
    readonly key: SigningKey,
    start: bigint,
    reserve: number,
  ) {
    this.#next = start;
    this.#ceiling = start;
    this.#reserve = BigInt(reserve);
  }

  /** The public key file to enrol at the collector (`iotupd fleet enrol --key`). */
  get publicKeyFile(): string {
    return join(this.dir, `${KEY_PREFIX}.pub`);
  }

  get publicKey(): Uint8Array {
    return this.key.publicKey;
  }

  /**
   * Open the identity in `dir`, creating the key (mode 0600) at first start. Refuses a key file
   * readable by others and a counter file that fails its checksum (fail closed: guessing could
   * send counters the collector already saw, and every report would be refused as a replay).
   */
  static open(dir: string, opts: DeviceIdentityOptions = {}): DeviceIdentity {
    const reserve = opts.reserve ?? 1000;
    if (!Number.isSafeInteger(reserve) || reserve < 1) throw new UsageError('reserve must be a positive integer');
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const keyFile = join(dir, `${KEY_PREFIX}.key`);
    let key: SigningKey;
    if (existsSync(keyFile)) key = loadSigningKey(keyFile);
    else {
      key = generateSigningKey();
      saveKeyPair(join(dir, KEY_PREFIX), key);
    }
    const stored = readCounter(join(dir, COUNTER_FILE));
    const clock = BigInt(Math.max(0, Math.floor((opts.now ?? Date.now)()))) * 1000n;
    const start = stored > clock ? stored : clock;
    return new DeviceIdentity(dir, key, start, reserve);
  }

  /** The counter of the last sealed report. */
  get lastCounter(): bigint | undefined {
    return this.#last;
  }

  /** The next counter value; persists a new reservation first when the reserved block is used up. */
  nextCounter(): bigint {
    if (this.#next >= U64_MAX) throw new StorageError('status counter exhausted', 'ERR_STATE_CORRUPT');
    if (this.#next >= this.#ceiling) {
      let c = this.#next + this.#reserve;
      if (c > U64_MAX) c = U64_MAX;
      writeAtomic(this.dir, COUNTER_FILE, formatCounter(c));
      this.#ceiling = c;
    }
    const v = this.#next;
    this.#next += 1n;
    this.#last = v;
    return v;
  }

  /** Stamp a counter and this device's key on `body`, sign it: the datagram to send. */
  seal(body: Omit<StatusBody, 'counter' | 'publicKey'>): Uint8Array {
    return seal({ ...body, counter: this.nextCounter(), publicKey: this.key.publicKey }, this.key.privateKey);
  }
}

function checksum(s: string): string {
  return createHash('sha256').update(s).digest('hex');
}

function formatCounter(c: bigint): string {
  const body = `iotupd status counter v1 ${c.toString()}`;
  return `${body}\n${checksum(body)}\n`;
}

function readCounter(path: string): bigint {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 0n;
    throw new StorageError(`cannot read ${path}: ${(err as Error).message}`, 'ERR_STORAGE', { cause: err });
  }
  const [body, sum] = text.split('\n');
  const m = /^iotupd status counter v1 (\d{1,20})$/.exec(body ?? '');
  if (!m || sum !== checksum(body as string) || BigInt(m[1] as string) > U64_MAX) {
    throw new StorageError(`${path} is corrupt; refusing to guess the status counter`, 'ERR_STATE_CORRUPT');
  }
  return BigInt(m[1] as string);
}
