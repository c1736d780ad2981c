// The agent's JSON config file; every key is documented in docs/agent.md "Config reference".
// Relative paths are taken from the config file's directory. A mistake is one UsageError
// (code ERR_CONFIG) naming the key; unknown keys are refused so a typo cannot pass unnoticed.
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { UsageError } from '../errors.js';
import { statusChannel } from '../fleet/channel.js';
import { checkDeviceId } from '../fleet/registry.js';
import { DEFAULT_BUDGET, type RateBudget } from '../fleet/reporter.js';
import { LIMITS } from '../wire/status.js';
import type { InstallSettings } from './install/index.js';

export interface HealthCheckSettings {
  command: string;
  timeoutSeconds: number;
  /** Further attempts after a failed one. */
  retries: number;
  retryDelaySeconds: number;
}

/** Fleet status reports of the daemon (docs/agent.md "Status reports"). */
export interface StatusSettings {
  /** The rate budget, every field filled in (DEFAULT_BUDGET where the config is silent). */
  budget: Required<RateBudget>;
  /** A channel name instead of the product's status channel (`iotupd/<product>/status`). */
  channel?: string;
}

export interface AgentConfig {
  /** The device id string (rollout hash input). */
  deviceId: string;
  product: string;
  deviceClass?: string;
  hardware?: string;
  /** Public key files of the pinned trust anchors. */
  trust: string[];
  stateDir: string;
  install: InstallSettings;
  healthCheck?: HealthCheckSettings;
  reboot: { required: boolean; command?: string };
  /** 'untrusted': the device has no trustworthy clock (docs/agent.md "No clock"). */
  clock: 'trusted' | 'untrusted';
  /** Loop guard: entries of one state for one release. */
  loopLimit: number;
  /** Releases abandoned before the switch are offered this many attempts. */
  maxAttempts: number;
  network: { interface?: string; maxBandwidthMbit?: number };
  /** Status reports of the daemon: false turns them off; absent means on with DEFAULT_BUDGET. */
  status?: StatusSettings | false;
}

class ConfigReader {
  constructor(
    private readonly file: string,
    private readonly base: string,
  ) {}

  fail(key: string, why: string): never {
    throw new UsageError(`config ${this.file}: '${key}' ${why}`, 'ERR_CONFIG');
  }

  object(v: unknown, key: string, allowed: readonly string[]): Record<string, unknown> {
    if (typeof v !== 'object' || v === null || Array.isArray(v)) this.fail(key, 'must be an object');
    const o = v as Record<string, unknown>;
    for (const k of Object.keys(o)) if (!allowed.includes(k)) this.fail(key ? `${key}.${k}` : k, 'is not a known key');
    return o;
  }

  string(v: unknown, key: string): string {
    if (typeof v !== 'string' || v.length === 0) this.fail(key, 'must be a non-empty string');
    return v;
  }

  optString(v: unknown, key: string): string | undefined {
    return v === undefined ? undefined : this.string(v, key);
  }

  path(v: unknown, key: string): string {
    return resolve(this.base, this.string(v, key));
  }

  number(v: unknown, key: string, min: number, max: number, fallback?: number): number {
    if (v === undefined && fallback !== undefined) return fallback;
    if (typeof v !== 'number' || !Number.isFinite(v) || v < min || v > max) this.fail(key, `must be a number from ${min} to ${max}`);
    return v;
  }

  bool(v: unknown, key: string, fallback: boolean): boolean {
    if (v === undefined) return fallback;
    if (typeof v !== 'boolean') this.fail(key, 'must be true or false');
    return v;
  }
}

const TOP = ['deviceId', 'deviceIdFile', 'product', 'deviceClass', 'hardware', 'trust', 'stateDir', 'install', 'healthCheck', 'reboot', 'clock', 'loopLimit', 'maxAttempts', 'network', 'status'] as const;

/** Parse and check a config; `file` names it in errors and relative paths start at its directory. */
export function parseAgentConfig(text: string, file: string, readDeviceId: (path: string) => string = defaultReadDeviceId): AgentConfig {
  const c = new ConfigReader(file, dirname(resolve(file)));
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new UsageError(`config ${file}: not valid JSON (${(err as Error).message.split('\n')[0]})`, 'ERR_CONFIG');
  }
  const o = c.object(raw, '', TOP);
  const product = c.string(o.product, 'product');
  if (Buffer.byteLength(product) > 64) c.fail('product', 'must be at most 64 bytes');
  let deviceId = '';
  if (o.deviceId !== undefined) {
    if (o.deviceIdFile !== undefined) c.fail('deviceIdFile', 'cannot be given together with deviceId');
    deviceId = c.string(o.deviceId, 'deviceId');
  } else {
    const idFile = o.deviceIdFile === undefined ? '/etc/machine-id' : c.path(o.deviceIdFile, 'deviceIdFile');
    try {
      deviceId = readDeviceId(idFile).trim();
    } catch (err) {
      c.fail('deviceIdFile', `names ${idFile}, which cannot be read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
    }
    if (deviceId.length === 0) c.fail('deviceIdFile', `names ${idFile}, which is empty`);
  }
  if (!Array.isArray(o.trust) || o.trust.length === 0) c.fail('trust', 'must be a non-empty list of public key files');
  const trust = (o.trust as unknown[]).map((t, i) => c.path(t, `trust[${i}]`));
  const stateDir = c.path(o.stateDir, 'stateDir');

  const ins = c.object(o.install, 'install', ['method', 'target', 'slots', 'pointer', 'slotType', 'install', 'switch', 'rollback', 'commit', 'timeoutSeconds']);
  const allowedFor: Record<string, string[]> = {
    file: ['method', 'target'],
    ab: ['method', 'slots', 'pointer', 'slotType'],
    hook: ['method', 'install', 'switch', 'rollback', 'commit', 'timeoutSeconds'],
  };
  const method = ins.method;
  if (method !== 'file' && method !== 'ab' && method !== 'hook') return c.fail('install.method', 'must be one of file, ab, hook');
  for (const k of Object.keys(ins)) if (!(allowedFor[method as string] as string[]).includes(k)) c.fail(`install.${k}`, `does not apply to install method '${method}'`);
  let install: InstallSettings;
  if (method === 'file') {
    install = { method, target: c.path(ins.target, 'install.target') };
  } else if (method === 'ab') {
    if (!Array.isArray(ins.slots) || ins.slots.length !== 2) c.fail('install.slots', 'must be a list of two paths');
    const slots = (ins.slots as unknown[]).map((s, i) => c.path(s, `install.slots[${i}]`)) as [string, string];
    if (slots[0] === slots[1]) c.fail('install.slots', 'must name two different paths');
    const slotType = ins.slotType ?? 'file';
    if (slotType !== 'file' && slotType !== 'dir') return c.fail('install.slotType', "must be 'file' or 'dir'");
    install = { method, slots, pointer: c.path(ins.pointer, 'install.pointer'), slotType };
  } else {
    install = {
      method: 'hook',
      install: c.string(ins.install, 'install.install'),
      switch: c.string(ins.switch, 'install.switch'),
      rollback: c.string(ins.rollback, 'install.rollback'),
      timeoutSeconds: c.number(ins.timeoutSeconds, 'install.timeoutSeconds', 1, 86400, 600),
    };
    const commit = c.optString(ins.commit, 'install.commit');
    if (commit !== undefined) install.commit = commit;
  }

  const cfg: AgentConfig = {
    deviceId,
    product,
    trust,
    stateDir,
    install,
    reboot: { required: false },
    clock: 'trusted',
    loopLimit: c.number(o.loopLimit, 'loopLimit', 2, 100, 5),
    maxAttempts: c.number(o.maxAttempts, 'maxAttempts', 1, 100, 3),
    network: {},
  };
  const deviceClass = c.optString(o.deviceClass, 'deviceClass');
  if (deviceClass !== undefined) cfg.deviceClass = deviceClass;
  const hardware = c.optString(o.hardware, 'hardware');
  if (hardware !== undefined) cfg.hardware = hardware;
  if (o.healthCheck !== undefined) {
    const h = c.object(o.healthCheck, 'healthCheck', ['command', 'timeoutSeconds', 'retries', 'retryDelaySeconds']);
    cfg.healthCheck = {
      command: c.string(h.command, 'healthCheck.command'),
      timeoutSeconds: c.number(h.timeoutSeconds, 'healthCheck.timeoutSeconds', 0.1, 86400, 60),
      retries: c.number(h.retries, 'healthCheck.retries', 0, 100, 2),
      retryDelaySeconds: c.number(h.retryDelaySeconds, 'healthCheck.retryDelaySeconds', 0, 3600, 5),
    };
    if (!Number.isInteger(cfg.healthCheck.retries)) c.fail('healthCheck.retries', 'must be an integer');
  }
  if (o.reboot !== undefined) {
    const r = c.object(o.reboot, 'reboot', ['required', 'command']);
    cfg.reboot.required = c.bool(r.required, 'reboot.required', false);
    const command = c.optString(r.command, 'reboot.command');
    if (command !== undefined) cfg.reboot.command = command;
    if (cfg.reboot.required && command === undefined) c.fail('reboot.command', 'is needed when reboot.required is true');
  }
  if (o.clock !== undefined) {
    if (o.clock !== 'trusted' && o.clock !== 'untrusted') return c.fail('clock', "must be 'trusted' or 'untrusted'");
    cfg.clock = o.clock;
  }
  if (!Number.isInteger(cfg.loopLimit)) c.fail('loopLimit', 'must be an integer');
  if (!Number.isInteger(cfg.maxAttempts)) c.fail('maxAttempts', 'must be an integer');
  if (o.network !== undefined) {
    const n = c.object(o.network, 'network', ['interface', 'maxBandwidthMbit']);
    const iface = c.optString(n.interface, 'network.interface');
    if (iface !== undefined) cfg.network.interface = iface;
    if (n.maxBandwidthMbit !== undefined) cfg.network.maxBandwidthMbit = c.number(n.maxBandwidthMbit, 'network.maxBandwidthMbit', 0.001, 100_000);
  }
  cfg.status = parseStatus(c, o.status, cfg, o.deviceId !== undefined ? 'deviceId' : 'deviceIdFile');
  return cfg;
}

/** The `status` key: absent or true reports with the default budget, false turns reports off. */
function parseStatus(c: ConfigReader, v: unknown, cfg: AgentConfig, idKey: string): StatusSettings | false {
  if (v === false) return false;
  const budget = { ...DEFAULT_BUDGET };
  const out: StatusSettings = { budget };
  if (v !== undefined && v !== true) {
    if (typeof v !== 'object' || v === null || Array.isArray(v)) c.fail('status', 'must be false or an object');
    const st = c.object(v, 'status', ['budget', 'channel']);
    if (st.budget !== undefined) {
      const b = c.object(st.budget, 'status.budget', ['bitsPerSecond', 'fleetSize', 'minIntervalSeconds', 'burst']);
      budget.bitsPerSecond = c.number(b.bitsPerSecond, 'status.budget.bitsPerSecond', 1, 1e12, DEFAULT_BUDGET.bitsPerSecond);
      budget.fleetSize = c.number(b.fleetSize, 'status.budget.fleetSize', 1, 1e9, DEFAULT_BUDGET.fleetSize);
      if (!Number.isInteger(budget.fleetSize)) c.fail('status.budget.fleetSize', 'must be an integer');
      budget.minIntervalMs = c.number(b.minIntervalSeconds, 'status.budget.minIntervalSeconds', 0.1, 86400, DEFAULT_BUDGET.minIntervalMs / 1000) * 1000;
      budget.burst = c.number(b.burst, 'status.budget.burst', 1, 1000, DEFAULT_BUDGET.burst);
      if (!Number.isInteger(budget.burst)) c.fail('status.budget.burst', 'must be an integer');
    }
    const channel = c.optString(st.channel, 'status.channel');
    if (channel !== undefined) out.channel = channel;
  }
  // What every report carries must fit the report, or no report could ever be sent.
  try {
    checkDeviceId(cfg.deviceId);
  } catch {
    c.fail(idKey, `gives the device id '${cfg.deviceId}', which status reports cannot carry (1..${LIMITS.deviceId} bytes, no whitespace); fix it or set "status": false`);
  }
  if (out.channel === undefined) {
    try {
      statusChannel(cfg.product);
    } catch {
      c.fail('product', `has spaces or '/', so it has no status channel; give status.channel or set "status": false`);
    }
  }
  if (cfg.deviceClass !== undefined && Buffer.byteLength(cfg.deviceClass) > LIMITS.deviceClass) c.fail('deviceClass', `must be at most ${LIMITS.deviceClass} bytes for status reports (or set "status": false)`);
  return out;
}

function defaultReadDeviceId(path: string): string {
  return readFileSync(path, 'utf8');
}

/** Read and parse a config file. */
export function loadAgentConfig(file: string): AgentConfig {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new UsageError(`config ${file}: cannot be read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`, 'ERR_CONFIG');
  }
  return parseAgentConfig(text, file);
}
