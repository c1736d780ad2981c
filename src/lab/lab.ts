import { spawn, spawnSync, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync, unlinkSync } from 'node:fs';
import { LabError, UsageError } from '../errors.js';
import { labSupport } from './support.js';

/** One simulated host: its own network namespace with one interface on the lab bridge. */
export interface LabHost {
  /** Role name given to Lab.create (e.g. 'sender', 'dev1'). */
  name: string;
  /** Network namespace (use with `ip netns exec`). */
  netns: string;
  /** The host's interface name inside its namespace (unique per run, never 'eth0'). */
  ifname: string;
  /** The host's ULA address (no prefix length), e.g. fd3c:1a2b:9f00:77e1::2. */
  address: string;
  /** Bridge-side veth port of this host (in the bridge namespace). */
  port: string;
}

export interface LabOptions {
  /** Host role names: 1..64 of [a-z0-9_-], starting with a letter, unique. */
  hosts: string[];
}

export interface Impairment {
  /** Random loss of UDP datagrams into the host, 0..100 % (0.01 % resolution). */
  lossPercent?: number;
  /** Random duplication of UDP datagrams towards the host, 0..100 %. */
  duplicatePercent?: number;
  /** Rate limit towards the host (tbf on the bridge-side port), Mbit/s. */
  rateMbit?: number;
}

export interface ExecResult {
  code: number;
  stdout: string;
  stderr: string;
}

const HOST_RE = /^[a-z][a-z0-9_-]{0,31}$/i;
const MAX_HOSTS = 64;
const IP = 'ip';
const RMEM_TARGET = 16 * 1024 * 1024;
const RMEM_STATE = '/run/iotupd-lab-sysctl.json';
/** One file per live lab: its owner's pid and start time, so a later run can reap labs of killed processes. */
const OWNER_DIR = '/run/iotupd-lab';

/** Every live lab of this process, for exit/signal teardown. */
const live = new Set<Lab>();
let handlersInstalled = false;

function installHandlers(): void {
  if (handlersInstalled) return;
  handlersInstalled = true;
  process.on('exit', () => {
    for (const lab of live) lab.destroySync();
  });
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    const handler = (): void => {
      for (const lab of live) lab.destroySync();
      // If nobody else handles the signal, restore the default action (die by the signal).
      if (process.listenerCount(sig) === 1) {
        process.removeListener(sig, handler);
        process.kill(process.pid, sig);
      }
    };
    process.on(sig, handler);
  }
}

function run(cmd: string, args: string[], input?: string): Promise<ExecResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: [input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout?.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr?.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('error', (err) => reject(new LabError(`cannot run ${cmd}: ${err.message}`, 'ERR_LAB_EXEC')));
    child.on('close', (code, signal) => resolve({ code: code ?? (signal ? 128 : 1), stdout, stderr }));
    if (child.stdin) {
      // a command may exit without reading its input (EPIPE): its exit status tells
      child.stdin.on('error', () => {});
      child.stdin.end(input);
    }
  });
}

async function runChecked(what: string, cmd: string, args: string[], input?: string): Promise<string> {
  const r = await run(cmd, args, input);
  if (r.code !== 0) {
    throw new LabError(`${what} failed (${cmd} ${args.join(' ')}): ${r.stderr.trim() || `exit ${r.code}`}`, 'ERR_LAB_COMMAND');
  }
  return r.stdout;
}

function randomId(): string {
  const alphabet = 'abcdefghijklmnopqrstuvwxyz0123456789';
  const b = randomBytes(5);
  let s = '';
  for (const x of b) s += alphabet[x % alphabet.length];
  return s;
}

function ulaPrefix(): string {
  // RFC 4193: fd00::/8 + 40-bit random Global ID + 16-bit subnet -> a /64 per run.
  const b = randomBytes(7);
  const h = (i: number): string => ((b[i]! << 8) | b[i + 1]!).toString(16);
  return `fd${b[6]!.toString(16).padStart(2, '0')}:${h(0)}:${h(2)}:${h(4)}`;
}

/**
 * A private IPv6 LAN: one network namespace per host, each with a veth into a Linux
 * bridge that lives in its own namespace. Names are `iu<5 random chars>...` so parallel
 * runs never collide; nothing touches the root namespace's interfaces. Everything is
 * removed by destroy(), by withLab(), at process exit and on SIGINT/SIGTERM/SIGHUP.
 */
export class Lab {
  readonly id: string;
  readonly prefix: string;
  readonly bridgeNetns: string;
  readonly bridge: string;
  readonly hosts: LabHost[];
  /** net.core.rmem_max in effect (raised to 16 MiB when we could). */
  rmemMax = 0;
  #children = new Set<ChildProcess>();
  #destroyed = false;
  #created: string[] = []; // namespaces to delete

  private constructor(id: string, prefix: string, hosts: LabHost[]) {
    this.id = id;
    this.prefix = prefix;
    // '.' cannot occur in a host name, so no host namespace can collide with the bridge's
    this.bridgeNetns = `${id}.bridge`;
    this.bridge = `${id}br`;
    this.hosts = hosts;
  }

  /** Build the lab. Throws LabError with the reason when the lab is unsupported here. */
  static async create(opts: LabOptions): Promise<Lab> {
    const names = opts.hosts;
    if (!Array.isArray(names) || names.length === 0 || names.length > MAX_HOSTS) {
      throw new UsageError(`a lab needs 1 to ${MAX_HOSTS} hosts`, 'ERR_LAB_HOSTS');
    }
    const seen = new Set<string>();
    for (const n of names) {
      if (typeof n !== 'string' || !HOST_RE.test(n)) {
        throw new UsageError(`invalid lab host name '${String(n)}' (letters, digits, _ and -, at most 32)`, 'ERR_LAB_HOSTS');
      }
      if (seen.has(n)) throw new UsageError(`duplicate lab host name '${n}'`, 'ERR_LAB_HOSTS');
      seen.add(n);
    }
    const support = labSupport();
    if (!support.ok) throw new LabError(`network lab unavailable: ${support.reason}`, 'ERR_LAB_UNSUPPORTED');

    const id = `iu${randomId()}`;
    const prefix = ulaPrefix();
    const hosts: LabHost[] = names.map((name, i) => ({
      name,
      netns: `${id}-${name}`,
      ifname: `${id}h${i}`,
      address: `${prefix}::${(i + 1).toString(16)}`,
      port: `${id}p${i}`,
    }));
    reapStaleLabs();
    const lab = new Lab(id, prefix, hosts);
    live.add(lab);
    installHandlers();
    writeOwner(id); // before any namespace exists, so a reaper never sees an ownerless lab of ours
    try {
      lab.rmemMax = raiseBufferLimits();
      await lab.#build();
    } catch (err) {
      await lab.destroy();
      throw err instanceof LabError ? err : new LabError(`cannot build lab: ${(err as Error).message}`, 'ERR_LAB_BUILD');
    }
    return lab;
  }

  async #build(): Promise<void> {
    const br = this.bridgeNetns;
    // One shell script for the ~25 ip invocations: one process spawn instead of 25.
    // Every interpolated name was generated or validated above (no shell metacharacters).
    const lines = ['set -e'];
    const addNs = (ns: string): void => {
      lines.push(`ip netns add ${ns}`);
      this.#created.push(ns); // recorded before creation: destroy() tolerates absent ones
    };
    addNs(br);
    // The bridge namespace only switches frames: no IPv6 there (no DAD/MLD/RS noise).
    lines.push(`ip netns exec ${br} sh -c 'echo 1 > /proc/sys/net/ipv6/conf/all/disable_ipv6; echo 1 > /proc/sys/net/ipv6/conf/default/disable_ipv6'`);
    lines.push(`ip -n ${br} link set lo up`);
    lines.push(`ip -n ${br} link add ${this.bridge} type bridge mcast_snooping 0 stp_state 0 forward_delay 0`);
    lines.push(`ip -n ${br} link set ${this.bridge} up`);
    for (const h of this.hosts) {
      addNs(h.netns);
      // accept_dad must be 0 before the veth arrives, or its addresses sit in "tentative".
      lines.push(
        `ip netns exec ${h.netns} sh -c 'echo 0 > /proc/sys/net/ipv6/conf/all/accept_dad; echo 0 > /proc/sys/net/ipv6/conf/default/accept_dad'`,
      );
      lines.push(`ip -n ${h.netns} link set lo up`);
      lines.push(`ip -n ${br} link add ${h.port} type veth peer name ${h.ifname} netns ${h.netns}`);
      // A sender's UDP GSO packet (up to 64 datagrams, src/net/gso.ts) crosses the bridge whole;
      // gso_max_segs 1 splits it into datagrams at this port, as a NIC puts single frames on a
      // wire. Without it, the loss rule of impair() would drop whole runs of 64 (docs/lab.md).
      lines.push(`ip -n ${br} link set ${h.port} gso_max_segs 1 master ${this.bridge} up`);
      lines.push(`ip -n ${h.netns} addr add ${h.address}/64 dev ${h.ifname} nodad`);
      lines.push(`ip -n ${h.netns} link set ${h.ifname} up`);
    }
    await runChecked('building the lab', 'sh', ['-c', lines.join('\n')]);
  }

  /** The host named `name`; throws UsageError for an unknown name. */
  host(name: string | LabHost): LabHost {
    const n = typeof name === 'string' ? name : name.name;
    const h = this.hosts.find((x) => x.name === n);
    if (!h) throw new UsageError(`no lab host '${n}'`, 'ERR_LAB_HOST');
    return h;
  }

  get destroyed(): boolean {
    return this.#destroyed;
  }

  /**
   * Run `command args` inside the host's namespace. The child is killed by destroy().
   * stdio defaults to pipes.
   */
  spawn(host: string | LabHost, command: string, args: string[] = [], opts: SpawnOptions = {}): ChildProcess {
    this.#checkLive();
    const h = this.host(host);
    const child = spawn(IP, ['netns', 'exec', h.netns, command, ...args], { stdio: 'pipe', ...opts });
    this.#children.add(child);
    child.once('exit', () => this.#children.delete(child));
    child.once('error', () => this.#children.delete(child));
    return child;
  }

  /** spawn() of this Node binary (process.execPath) running `script` inside the host. */
  spawnNode(host: string | LabHost, script: string, args: string[] = [], opts: SpawnOptions = {}): ChildProcess {
    return this.spawn(host, process.execPath, [script, ...args], opts);
  }

  /** Run a command inside the host and collect its output. Rejects with LabError on a non-zero exit unless `allowFailure`. */
  async exec(host: string | LabHost, command: string, args: string[] = [], opts: { input?: string; allowFailure?: boolean } = {}): Promise<ExecResult> {
    this.#checkLive();
    const h = this.host(host);
    const r = await run(IP, ['netns', 'exec', h.netns, command, ...args], opts.input);
    if (r.code !== 0 && !opts.allowFailure) {
      throw new LabError(`${command} in ${h.name} exited ${r.code}: ${r.stderr.trim()}`, 'ERR_LAB_EXEC');
    }
    return r;
  }

  /**
   * Impair traffic INTO `host`, replacing earlier impairments of that host ({} clears):
   * loss by nftables on the host's input hook, duplicates by nftables netdev egress `dup`
   * on the bridge-side port, rate by a tbf qdisc on the bridge-side port (this kernel has no netem).
   */
  async impair(host: string | LabHost, imp: Impairment): Promise<void> {
    this.#checkLive();
    const h = this.host(host);
    const loss = percent('lossPercent', imp.lossPercent);
    const dup = percent('duplicatePercent', imp.duplicatePercent);
    const rate = imp.rateMbit;
    if (rate !== undefined && (!Number.isFinite(rate) || rate <= 0 || rate > 100_000)) {
      throw new UsageError(`rateMbit must be > 0 and <= 100000, got ${String(rate)}`, 'ERR_LAB_IMPAIR');
    }
    // Loss: numgen over 10000 gives 0.01 % resolution.
    const lossScript = [
      'table inet iotupd_lab',
      'delete table inet iotupd_lab',
      'table inet iotupd_lab {',
      '  chain input {',
      '    type filter hook input priority -300; policy accept;',
      loss >= 100
        ? '    meta l4proto udp counter drop'
        : loss > 0
          ? `    meta l4proto udp numgen random mod 10000 < ${Math.round(loss * 100)} counter drop`
          : '',
      '  }',
      '}',
    ].join('\n');
    await runChecked(`loss impairment of ${h.name}`, IP, ['netns', 'exec', h.netns, 'nft', '-f', '-'], lossScript);
    // Duplicates: the clone re-enters the egress hook; the mark stops a second duplication.
    // (The mark is scrubbed when the frame crosses into the host's namespace.)
    const dupScript = [
      'table netdev iotupd_dup',
      'delete table netdev iotupd_dup',
      dup > 0
        ? [
            'table netdev iotupd_dup {',
            `  chain egress { type filter hook egress device "${h.port}" priority 0; policy accept;`,
            `    meta mark != 0x1d7 meta l4proto udp${dup >= 100 ? '' : ` numgen random mod 10000 < ${Math.round(dup * 100)}`} meta mark set 0x1d7 counter dup to "${h.port}"`,
            '  }',
            '}',
          ].join('\n')
        : '',
    ].join('\n');
    await runChecked(`duplicate impairment of ${h.name}`, IP, ['netns', 'exec', this.bridgeNetns, 'nft', '-f', '-'], dupScript);
    await run(IP, ['netns', 'exec', this.bridgeNetns, 'tc', 'qdisc', 'del', 'dev', h.port, 'root']);
    if (rate !== undefined) {
      const bytesPerSec = (rate * 1e6) / 8;
      // burst >= rate/HZ plus a few frames; queue up to 50 ms at rate, at least 64 KiB.
      const burst = Math.max(16 * 1024, Math.ceil(bytesPerSec / 250));
      const limit = Math.max(64 * 1024, Math.ceil(bytesPerSec * 0.05));
      await runChecked(`rate limit of ${h.name}`, IP, [
        'netns', 'exec', this.bridgeNetns, 'tc', 'qdisc', 'add', 'dev', h.port, 'root', 'tbf',
        'rate', `${Math.round(rate * 1000)}kbit`, 'burst', String(burst), 'limit', String(limit),
      ]);
    }
  }

  /**
   * Take the host's bridge-side port down (the host is cut off, its interface loses carrier)
   * or up again: a device going offline and coming back.
   */
  async link(host: string | LabHost, state: 'up' | 'down'): Promise<void> {
    this.#checkLive();
    const h = this.host(host);
    if (state !== 'up' && state !== 'down') throw new UsageError(`link state must be 'up' or 'down'`, 'ERR_LAB_LINK');
    await runChecked(`link ${state} of ${h.name}`, IP, ['-n', this.bridgeNetns, 'link', 'set', h.port, state]);
  }

  /** /proc/net/snmp6 of the host's namespace as { Udp6InDatagrams: n, Udp6RcvbufErrors: n, ... }. */
  async snmp6(host: string | LabHost): Promise<Record<string, number>> {
    const r = await this.exec(host, 'cat', ['/proc/net/snmp6']);
    const out: Record<string, number> = {};
    for (const line of r.stdout.split('\n')) {
      const m = /^(\S+)\s+(\d+)$/.exec(line.trim());
      if (m) out[m[1]!] = Number(m[2]);
    }
    return out;
  }

  /** Kill every child, delete every namespace (which removes veths, bridge, nft tables, qdiscs). Idempotent. */
  async destroy(): Promise<void> {
    if (this.#destroyed) return;
    this.#killChildren('SIGKILL');
    this.destroySync();
  }

  /** Synchronous teardown for exit and signal handlers. Idempotent. */
  destroySync(): void {
    if (this.#destroyed) return;
    this.#destroyed = true;
    live.delete(this);
    this.#killChildren('SIGKILL');
    // Hosts first, then the bridge: deleting a namespace destroys its veth ends.
    const order = [...this.#created].reverse();
    if (order.length > 0) {
      const script = order.map((ns) => `ip netns del ${ns} 2>/dev/null`).join('\n');
      // The shell ignores INT/TERM/HUP: `timeout` and Ctrl-C signal the whole process group,
      // and the teardown must outlive the signal that triggered it.
      spawnSync('sh', ['-c', `trap '' INT TERM HUP\n${script}\ntrue`], { stdio: 'ignore' });
    }
    try {
      unlinkSync(`${OWNER_DIR}/${this.id}`);
    } catch {
      // never written (read-only /run) or already gone
    }
    restoreBufferLimits();
  }

  #killChildren(sig: NodeJS.Signals): void {
    for (const c of this.#children) {
      if (c.exitCode === null && c.signalCode === null) {
        try {
          c.kill(sig);
        } catch {
          // already gone
        }
      }
    }
    this.#children.clear();
  }

  #checkLive(): void {
    if (this.#destroyed) throw new LabError('lab was destroyed', 'ERR_LAB_DESTROYED');
  }
}

/** Build a lab, run `fn`, always destroy the lab (also when `fn` throws). */
export async function withLab<T>(opts: LabOptions, fn: (lab: Lab) => Promise<T>): Promise<T> {
  const lab = await Lab.create(opts);
  try {
    return await fn(lab);
  } finally {
    await lab.destroy();
  }
}

/** Names of lab namespaces that exist now (any process's). */
export function labNamespaces(): string[] {
  const r = spawnSync(IP, ['netns', 'list'], { encoding: 'utf8' });
  if (r.status !== 0) return [];
  return r.stdout
    .split('\n')
    .map((l) => l.split(' ')[0] ?? '')
    .filter((n) => /^iu[a-z0-9]{5}[-.]/.test(n));
}

function percent(name: string, v: number | undefined): number {
  if (v === undefined) return 0;
  if (!Number.isFinite(v) || v < 0 || v > 100) throw new UsageError(`${name} must be from 0 to 100, got ${String(v)}`, 'ERR_LAB_IMPAIR');
  return v;
}

function readSysctl(path: string): number | undefined {
  try {
    const n = Number(readFileSync(path, 'utf8').trim());
    return Number.isFinite(n) ? n : undefined;
  } catch {
    return undefined;
  }
}

/**
 * net.core.rmem_max / wmem_max are global (not per namespace): raise them to 16 MiB when
 * we may, remembering the original values in /run so the last lab restores them.
 * Returns the rmem_max in effect.
 */
function raiseBufferLimits(): number {
  const paths = ['/proc/sys/net/core/rmem_max', '/proc/sys/net/core/wmem_max'];
  const current = paths.map(readSysctl);
  if (current.every((v) => v !== undefined && v >= RMEM_TARGET)) return current[0] ?? 0;
  try {
    if (!existsSync(RMEM_STATE)) writeFileSync(RMEM_STATE, JSON.stringify({ rmem_max: current[0], wmem_max: current[1] }), { flag: 'wx' });
  } catch {
    // another lab wrote it first, or /run is read-only: fine either way
  }
  for (let i = 0; i < paths.length; i++) {
    const cur = current[i];
    if (cur !== undefined && cur < RMEM_TARGET) {
      try {
        writeFileSync(paths[i]!, String(RMEM_TARGET));
      } catch {
        // not root in the initial user namespace (e.g. under unshare): keep the current limit
      }
    }
  }
  return readSysctl(paths[0]!) ?? 0;
}

/** Restore the limits saved by raiseBufferLimits() when no lab namespaces remain. */
function restoreBufferLimits(): void {
  if (!existsSync(RMEM_STATE) || labNamespaces().length > 0 || live.size > 0) return;
  try {
    const saved = JSON.parse(readFileSync(RMEM_STATE, 'utf8')) as { rmem_max?: number; wmem_max?: number };
    if (typeof saved.rmem_max === 'number') writeFileSync('/proc/sys/net/core/rmem_max', String(saved.rmem_max));
    if (typeof saved.wmem_max === 'number') writeFileSync('/proc/sys/net/core/wmem_max', String(saved.wmem_max));
    unlinkSync(RMEM_STATE);
  } catch {
    // leave it: a later lab retries
  }
}

function startTime(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // field 22 (starttime) counted after the ')' that ends the command name
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return rest[0] === 'Z' ? undefined : rest[19];
  } catch {
    return undefined;
  }
}

function writeOwner(id: string): void {
  try {
    mkdirSync(OWNER_DIR, { recursive: true });
    writeFileSync(`${OWNER_DIR}/${id}`, JSON.stringify({ pid: process.pid, start: startTime(process.pid) }));
  } catch {
    // no writable /run: labs still work, they just cannot be reaped after a SIGKILL
  }
}

/**
 * Delete the namespaces of labs whose owning process is gone (SIGKILL, OOM, power cut of a
 * container), as recorded in /run/iotupd-lab. Labs without an owner file are left alone.
 * Returns the lab ids reaped. Lab.create() calls this first.
 */
export function reapStaleLabs(): string[] {
  let ids: string[];
  try {
    ids = readdirSync(OWNER_DIR).filter((n) => /^iu[a-z0-9]{5}$/.test(n));
  } catch {
    return [];
  }
  const reaped: string[] = [];
  for (const id of ids) {
    let owner: { pid?: unknown; start?: unknown };
    try {
      owner = JSON.parse(readFileSync(`${OWNER_DIR}/${id}`, 'utf8')) as typeof owner;
    } catch {
      continue; // being written right now
    }
    if (typeof owner.pid !== 'number') continue;
    const start = startTime(owner.pid);
    if (start !== undefined && start === owner.start) continue; // owner alive
    const names = labNamespaces().filter((n) => n.startsWith(`${id}-`) || n.startsWith(`${id}.`));
    if (names.length > 0) {
      // the dead owner's children may still run inside (orphaned): kill them, then delete
      const script = names.map((n) => `for p in $(ip netns pids ${n} 2>/dev/null); do kill -9 $p 2>/dev/null; done; ip netns del ${n} 2>/dev/null`);
      spawnSync('sh', ['-c', script.join('\n') + '\ntrue'], { stdio: 'ignore' });
    }
    try {
      unlinkSync(`${OWNER_DIR}/${id}`);
    } catch {
      // another reaper was faster
    }
    reaped.push(id);
  }
  return reaped;
}
