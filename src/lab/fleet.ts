// A fleet in the lab: keys and releases made through the library, a publisher process and agent
// daemon processes (`iotupd publish`, `iotupd agent --config F --json`) in their own namespaces.
// Used by the fleet demo (src/cli/commands/demo.ts), the agent lab test and bench/agent.ts.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ascii } from '../crypto/bytes.js';
import { issueDelegation } from '../crypto/certs.js';
import { generateSigningKey, saveKeyPair, signingKeyFrom, type SigningKey } from '../crypto/keys.js';
import { rolloutPosition } from '../crypto/manifest.js';
import { JsonLines, type JsonLine } from './json-lines.js';
import type { Lab } from './lab.js';

/** The CLI entry point (dist/src/cli/main.js). */
export const CLI_MAIN = fileURLToPath(new URL('../cli/main.js', import.meta.url));

export interface FleetKeys {
  /** The devices' pinned root. */
  rootPub: string;
  /** The release and beacon signer, delegated by the root for the product. */
  signerKey: string;
  signer: SigningKey;
}

/** A root key and a signer it delegates for `product` (sequences 1..maxSequence), saved in `dir`. */
export function makeFleetKeys(dir: string, product: string, maxSequence = 1000n): FleetKeys {
  const root = generateSigningKey();
  const s = generateSigningKey();
  const now = Math.floor(Date.now() / 1000);
  const cert = issueDelegation(root, s.publicKey, { products: [product], notBefore: now - 3600, notAfter: now + 30 * 86400, minSequence: 1n, maxSequence });
  const signer = signingKeyFrom(s.privateKey, [cert]);
  saveKeyPair(join(dir, 'root'), root);
  saveKeyPair(join(dir, 'signer'), signer);
  return { rootPub: join(dir, 'root.pub'), signerKey: join(dir, 'signer.key'), signer };
}

/**
 * `count` device ids (prefix-N) whose rollout position (src/crypto/manifest.ts) for this product
 * and sequence is inside (`inside` true) or outside a rollout of `basisPoints`.
 */
export function deviceIds(prefix: string, product: string, sequence: bigint, basisPoints: number, inside: boolean, count: number): string[] {
  const out: string[] = [];
  for (let i = 0; out.length < count && i < 100_000; i++) {
    const id = `${prefix}-${i}`;
    if (rolloutPosition({ product, sequence }, ascii(id)) < basisPoints === inside) out.push(id);
  }
  return out;
}

export interface FleetDeviceConfig {
  deviceId: string;
  product: string;
  deviceClass?: string;
  trust: string[];
  stateDir: string;
  /** The file the image is installed as (file install method). */
  target: string;
  interface: string;
  /** A health check command (sh -c); none: always healthy. */
  healthCheck?: string;
  /** The config's `status` key (docs/agent.md "Status reports"); absent: reports with the default budget. */
  status?: false | { budget?: { bitsPerSecond?: number; fleetSize?: number; minIntervalSeconds?: number; burst?: number }; channel?: string };
}

/** Write an agent config file (docs/agent.md "Config reference"); returns its path. */
export function writeAgentConfig(path: string, c: FleetDeviceConfig): string {
  const cfg: Record<string, unknown> = {
    deviceId: c.deviceId,
    product: c.product,
    trust: c.trust,
    stateDir: c.stateDir,
    install: { method: 'file', target: c.target },
    network: { interface: c.interface },
  };
  if (c.deviceClass !== undefined) cfg.deviceClass = c.deviceClass;
  if (c.healthCheck !== undefined) cfg.healthCheck = { command: c.healthCheck, timeoutSeconds: 10, retries: 0, retryDelaySeconds: 0 };
  if (c.status !== undefined) cfg.status = c.status;
  writeFileSync(path, `${JSON.stringify(cfg, null, 2)}\n`);
  return path;
}

export interface FleetProcess {
  host: string;
  /** The process id (`ip netns exec` execs the command, so it is the command's own). */
  pid: number | undefined;
  out: JsonLines;
  /** Every line of the given type seen so far. */
  of(type: string): JsonLine[];
  waitFor(pred: (l: JsonLine) => boolean, ms?: number): Promise<JsonLine>;
  stop(): void;
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }>;
}

function fleetProcess(lab: Lab, host: string, args: string[], onLine?: (l: JsonLine) => void): FleetProcess {
  const child = lab.spawnNode(host, CLI_MAIN, args);
  const out = new JsonLines(child, { name: host, ...(onLine ? { onLine } : {}) });
  return {
    host,
    pid: child.pid,
    out,
    of: (type) => out.lines.filter((l) => l.type === type),
    waitFor: (pred, ms) => out.waitFor(pred, ms),
    stop: () => child.kill('SIGTERM'),
    exit: out.exited.then(({ code, signal, stderr }) => ({ code, signal, stderr })),
  };
}

/** `iotupd agent --config F --json` in `host`. */
export function spawnAgent(lab: Lab, host: string, config: string, onLine?: (l: JsonLine) => void, statsInterval = 1): FleetProcess {
  return fleetProcess(lab, host, ['agent', '--config', config, '--json', '--stats-interval', String(statsInterval)], onLine);
}

export interface PublisherSettings {
  signerKey: string;
  releases: string;
  /** Mbit/s of each release's data (default 20). */
  rateMbit?: number;
  /** Seconds between beacons of a release (default 0.5 here). */
  interval?: number;
  dataTimeout?: number;
  /** More `iotupd publish` options (e.g. --registry FILE to pause releases nobody needs). */
  args?: string[];
}

/** `iotupd publish --releases DIR --json` in `host`, serving the data. */
export function spawnPublisher(lab: Lab, host: string, p: PublisherSettings, onLine?: (l: JsonLine) => void): FleetProcess {
  const args = ['publish', '--interface', lab.host(host).ifname, '--key', p.signerKey, '--releases', p.releases, '--interval', String(p.interval ?? 0.5), '--json'];
  if (p.rateMbit !== undefined) args.push('--rate', String(p.rateMbit));
  if (p.dataTimeout !== undefined) args.push('--data-timeout', String(p.dataTimeout));
  if (p.args) args.push(...p.args);
  return fleetProcess(lab, host, args, onLine);
}
