// A device on disk for the agent tests: pinned root key, signed releases (manifest + image files),
// a config for each install method, a health check that passes only for known-good images, and
// helpers to run the real CLI agent as a child process and to read what it left.
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, cpSync, mkdirSync, readFileSync, realpathSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { blockHashes, parseOti } from '../../src/crypto/blocks.js';
import { toHex } from '../../src/crypto/bytes.js';
import { formatPublicKeyFile, publicInfo } from '../../src/crypto/keys.js';
import { signManifest, verifyManifest, type ManifestFields } from '../../src/crypto/manifest.js';
import { TrustStore } from '../../src/crypto/trust.js';
import { DeviceState } from '../../src/crypto/rollback.js';
import { readAgentState, type AgentStateData } from '../../src/agent/state.js';
import { keyFromSeed, otiBytes, randomBytesSeeded } from '../crypto/fixtures.js';

export const MAIN = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
export const PRODUCT = 'sensor-v2';
export const NOW = Math.floor(Date.now() / 1000);
const signer = keyFromSeed('agent test root');

export type Method = 'file' | 'ab' | 'hook';

export interface Image {
  name: string;
  sequence: bigint;
  bytes: Uint8Array;
  hash: string;
  manifestFile: string;
  imageFile: string;
  manifestId: string;
}

export function sha256hex(b: Uint8Array): string {
  return createHash('sha256').update(b).digest('hex');
}

/** A signed release: a recognisable image of `size` bytes and its manifest, written into `dir`. */
export function makeRelease(dir: string, name: string, sequence: bigint, extra: Partial<ManifestFields> = {}, size = 64 * 1024): Image {
  const head = new TextEncoder().encode(`IOTUPD TEST IMAGE ${name} sequence ${sequence}\n`);
  const bytes = randomBytesSeeded(size, Number(sequence) * 1000 + name.length);
  bytes.set(head, 0);
  return signRelease(dir, name, sequence, bytes, extra);
}

/** Sign `bytes` as release `name` and write its manifest and image into `dir`. */
export function signRelease(dir: string, name: string, sequence: bigint, bytes: Uint8Array, extra: Partial<ManifestFields> = {}): Image {
  const size = bytes.length;
  const oti = otiBytes(size, 1024, 1);
  const hash = new Uint8Array(createHash('sha256').update(bytes).digest());
  const fields: ManifestFields = {
    product: PRODUCT,
    sequence,
    version: `${name}`,
    created: NOW - 3600,
    expires: NOW + 30 * 86400,
    objectId: hash.slice(0, 8),
    objectHash: hash,
    size,
    oti,
    blockHashes: blockHashes(parseOti(oti), bytes),
    ...extra,
  };
  const manifest = signManifest(fields, signer);
  const manifestFile = join(dir, `${name}.manifest`);
  const imageFile = join(dir, `${name}.img`);
  writeFileSync(manifestFile, manifest);
  writeFileSync(imageFile, bytes);
  const m = verifyManifest(manifest, new TrustStore([publicInfo(signer)]), { product: fields.product, installedSequence: 0n }, undefined);
  return { name, sequence, bytes, hash: sha256hex(bytes), manifestFile, imageFile, manifestId: toHex(m.manifestId) };
}

export interface Device {
  dir: string;
  method: Method;
  config: string;
  stateDir: string;
  v1: Image;
  v2: Image;
  v2bad: Image;
  /** Absolute path of the image now in use (per method). */
  active(): string | undefined;
}

/** The config object for `method`, with paths relative to the device directory. */
export function configFor(method: Method, opts: { reboot?: boolean; health?: string; timeout?: number; retries?: number; loopLimit?: number } = {}): Record<string, unknown> {
  const install =
    method === 'file'
      ? { method: 'file', target: 'app/firmware.bin' }
      : method === 'ab'
        ? { method: 'ab', slots: ['ab/slot-a', 'ab/slot-b'], pointer: 'ab/active' }
        : {
            method: 'hook',
            install: './hooks/install.sh',
            switch: './hooks/switch.sh',
            rollback: './hooks/rollback.sh',
            commit: './hooks/commit.sh',
            timeoutSeconds: 10,
          };
  const cfg: Record<string, unknown> = {
    deviceId: 'test-device-0001',
    product: PRODUCT,
    trust: ['root.pub'],
    stateDir: 'state',
    install,
    healthCheck: { command: opts.health ?? `./check.sh ${method}`, timeoutSeconds: opts.timeout ?? 10, retries: opts.retries ?? 0, retryDelaySeconds: 0 },
    loopLimit: opts.loopLimit ?? 5,
  };
  if (opts.reboot) cfg.reboot = { required: true, command: 'true' };
  return cfg;
}

function script(path: string, body: string): void {
  writeFileSync(path, `#!/bin/sh\n${body}\n`);
  chmodSync(path, 0o755);
}

/**
 * A fresh device directory (commands run with it as the working directory): releases v1 (1),
 * v2 (2, healthy) and v2bad (2, fails the health check), scripts, and the config for `method`.
 */
export function makeDevice(dir: string, method: Method, cfg = configFor(method)): Device {
  mkdirSync(join(dir, 'rel'), { recursive: true });
  mkdirSync(join(dir, 'app'), { recursive: true });
  mkdirSync(join(dir, 'ab'), { recursive: true });
  mkdirSync(join(dir, 'hookdev'), { recursive: true });
  mkdirSync(join(dir, 'hooks'), { recursive: true });
  writeFileSync(join(dir, 'root.pub'), formatPublicKeyFile(publicInfo(signer)));
  const v1 = makeRelease(join(dir, 'rel'), 'v1', 1n);
  const v2 = makeRelease(join(dir, 'rel'), 'v2', 2n);
  const v2bad = makeRelease(join(dir, 'rel'), 'v2bad', 2n);
  writeFileSync(join(dir, 'good.txt'), `${v1.hash}\n${v2.hash}\n`);
  // Prints the path of the image in use for each method.
  script(
    join(dir, 'active.sh'),
    `case "$1" in
file) echo app/firmware.bin ;;
ab) p=$(cat ab/active 2>/dev/null || echo a); echo ab/slot-$p ;;
hook) readlink -f hookdev/current ;;
esac`,
  );
  script(join(dir, 'check.sh'), `f=$(./active.sh "$1") && [ -f "$f" ] && h=$(sha256sum "$f" | cut -d' ' -f1) && grep -qx "$h" good.txt`);
  // The hook method's own A/B: slot-SEQUENCE files and a 'current' symlink swapped atomically.
  script(join(dir, 'hooks/install.sh'), 'cp "$IOTUPD_IMAGE" hookdev/.slot.tmp && sync && mv hookdev/.slot.tmp "hookdev/slot-$IOTUPD_SEQUENCE"');
  script(join(dir, 'hooks/switch.sh'), 'ln -sfn "slot-$IOTUPD_SEQUENCE" hookdev/.current.tmp && mv -T hookdev/.current.tmp hookdev/current');
  script(join(dir, 'hooks/rollback.sh'), 'ln -sfn "slot-$IOTUPD_PREVIOUS_SEQUENCE" hookdev/.current.tmp && mv -T hookdev/.current.tmp hookdev/current');
  script(join(dir, 'hooks/commit.sh'), '[ "$IOTUPD_PREVIOUS_SEQUENCE" = 0 ] || rm -f "hookdev/slot-$IOTUPD_PREVIOUS_SEQUENCE"');
  writeFileSync(join(dir, 'agent.json'), JSON.stringify(cfg, null, 2));
  return deviceAt(dir, method, { v1, v2, v2bad });
}

/** The device in `dir` (a makeDevice directory, or a copy of one). */
export function deviceAt(dir: string, method: Method, images: { v1: Image; v2: Image; v2bad: Image }): Device {
  const img = (i: Image): Image => ({ ...i, manifestFile: join(dir, 'rel', `${i.name}.manifest`), imageFile: join(dir, 'rel', `${i.name}.img`) });
  return {
    dir,
    method,
    config: join(dir, 'agent.json'),
    stateDir: join(dir, 'state'),
    v1: img(images.v1),
    v2: img(images.v2),
    v2bad: img(images.v2bad),
    active() {
      try {
        if (method === 'file') return join(dir, 'app/firmware.bin');
        if (method === 'ab') {
          let p = 'a';
          try {
            p = readFileSync(join(dir, 'ab/active'), 'utf8').trim();
          } catch {
            // missing pointer: slot a
          }
          return join(dir, `ab/slot-${p}`);
        }
        return realpathSync(join(dir, 'hookdev/current'));
      } catch {
        return undefined;
      }
    },
  };
}

/** A copy of a device directory. */
export function copyDevice(d: Device, dir: string): Device {
  cpSync(d.dir, dir, { recursive: true, verbatimSymlinks: true });
  return deviceAt(dir, d.method, d);
}

/** SHA-256 of the image in use, or undefined when there is none. */
export function activeHash(d: Device): string | undefined {
  const p = d.active();
  if (p === undefined) return undefined;
  try {
    return sha256hex(readFileSync(p));
  } catch {
    return undefined;
  }
}

export interface Run {
  code: number | null;
  signal: NodeJS.Signals | null;
  out: string;
  err: string;
}

/** Run the compiled CLI in the device directory. */
export function cli(d: { dir: string }, args: string[], env: Record<string, string> = {}): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [MAIN, ...args], { cwd: d.dir, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (b: Buffer) => (out += b.toString()));
    child.stderr.on('data', (b: Buffer) => (err += b.toString()));
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code, signal, out, err }));
  });
}

export function installArgs(d: Device, img: Image): string[] {
  return ['agent', 'install', '--config', d.config, '--manifest', img.manifestFile, '--image', img.imageFile];
}

export function agentState(d: Device): AgentStateData | undefined {
  return readAgentState(d.stateDir);
}

export function installedSequence(d: Device): bigint {
  return DeviceState.open(d.stateDir, PRODUCT).installedSequence;
}

/** Run tasks with at most `n` at once (the machine has 2 cores shared with other work). */
export async function pool<T>(n: number, tasks: (() => Promise<T>)[]): Promise<T[]> {
  const out: T[] = new Array<T>(tasks.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(n, tasks.length) }, async () => {
      while (next < tasks.length) {
        const i = next++;
        out[i] = await (tasks[i] as () => Promise<T>)();
      }
    }),
  );
  return out;
}
