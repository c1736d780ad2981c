// The collector's registry of enrolled device keys (docs/fleet-status.md "Enrolment"): a text
// file, one device per line, `DEVICE-ID PUBLIC-KEY-HEX`, '#' comments. Only a key listed here
// makes a device's reports trusted; the registry is written by `iotupd fleet enrol` / `approve`.
import { readFileSync, statSync } from 'node:fs';
import { basename, dirname } from 'node:path';
import { StorageError, UsageError } from '../errors.js';
import { equalBytes, fromHex, toHex } from '../crypto/bytes.js';
import { keyIdOf, PUBLIC_KEY_LENGTH } from '../crypto/keys.js';
import { writeAtomic } from '../crypto/rollback.js';
import { LIMITS } from '../wire/status.js';

const utf8 = new TextEncoder();

/** A device id as status reports carry it: 1..64 UTF-8 bytes, no whitespace or control characters. */
export function checkDeviceId(id: string): string {
  if (id.length === 0 || utf8.encode(id).length > LIMITS.deviceId || /[\s\p{Cc}]/u.test(id)) {
    throw new UsageError(`device id '${id}' must be 1..${LIMITS.deviceId} bytes with no whitespace`);
  }
  return id;
}

export class Registry {
  readonly #keys = new Map<string, Uint8Array>();

  /** Devices and their raw 32-byte keys. */
  entries(): [string, Uint8Array][] {
    return [...this.#keys.entries()];
  }

  get size(): number {
    return this.#keys.size;
  }

  get(deviceId: string): Uint8Array | undefined {
    return this.#keys.get(deviceId);
  }

  /**
   * Enrol `deviceId` with `publicKey`. Enrolling the same key again is a no-op; a different key
   * for an enrolled device is refused unless `replace` (a device whose state dir was wiped).
   */
  enrol(deviceId: string, publicKey: Uint8Array, replace = false): 'added' | 'unchanged' | 'replaced' {
    checkDeviceId(deviceId);
    keyIdOf(publicKey);
    const old = this.#keys.get(deviceId);
    if (old && equalBytes(old, publicKey)) return 'unchanged';
    if (old && !replace) throw new UsageError(`device '${deviceId}' is enrolled with another key (${toHex(keyIdOf(old))}); use --replace`);
    this.#keys.set(deviceId, publicKey.slice());
    return old ? 'replaced' : 'added';
  }

  remove(deviceId: string): boolean {
    return this.#keys.delete(deviceId);
  }

  format(): string {
    const lines = [...this.#keys.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([id, k]) => `${id} ${toHex(k)}`);
    return `# iotupd fleet registry: device id, its status key (Ed25519, hex)\n${lines.join('\n')}${lines.length ? '\n' : ''}`;
  }

  static parse(text: string, file = 'registry'): Registry {
    const r = new Registry();
    text.split('\n').forEach((raw, i) => {
      const line = raw.trim();
      if (line === '' || line.startsWith('#')) return;
      const bad = (why: string): never => {
        throw new StorageError(`${file}:${i + 1}: ${why}`, 'ERR_FLEET_REGISTRY');
      };
      const parts = line.split(/\s+/);
      if (parts.length !== 2) bad('expected "DEVICE-ID KEY-HEX"');
      const [id, hex] = parts as [string, string];
      if (!/^[0-9a-fA-F]{64}$/.test(hex)) bad(`key must be ${PUBLIC_KEY_LENGTH * 2} hex digits`);
      try {
        checkDeviceId(id);
      } catch (err) {
        bad((err as Error).message);
      }
      if (r.#keys.has(id)) bad(`device '${id}' listed twice`);
      r.#keys.set(id, fromHex(hex));
    });
    return r;
  }

  /** Load `path`; a missing file is an empty registry when `allowMissing`. */
  static load(path: string, allowMissing = false): Registry {
    let text: string;
    try {
      text = readFileSync(path, 'utf8');
    } catch (err) {
      if (allowMissing && (err as NodeJS.ErrnoException).code === 'ENOENT') return new Registry();
      throw new StorageError(`cannot read registry ${path}: ${(err as Error).message}`, 'ERR_FLEET_REGISTRY', { cause: err });
    }
    return Registry.parse(text, path);
  }

  /** Replace `path` atomically (a collector reading it sees the old or the new file). */
  save(path: string): void {
    writeAtomic(dirname(path), basename(path), this.format());
  }
}

/** The registry file's modification stamp (0 when missing): collectors reload when it moves. */
export function registryStamp(path: string): number {
  try {
    const st = statSync(path);
    return st.mtimeMs * 1000 + st.size;
  } catch {
    return 0;
  }
}
