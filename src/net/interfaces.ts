import { networkInterfaces } from 'node:os';
import { readFileSync, readdirSync } from 'node:fs';
import { InterfaceError } from '../errors.js';

/** A network interface that exists in this process's network namespace. */
export interface InterfaceInfo {
  /** Kernel name, e.g. `eth1` (at most 15 bytes, IFNAMSIZ - 1). */
  name: string;
  /** Kernel ifindex (> 0). */
  index: number;
  /** IPv6 addresses as reported by os.networkInterfaces() (without zone). */
  ipv6: string[];
  /** True when the interface has an IPv6 link-local address (needed to send link-scope multicast). */
  hasLinkLocal: boolean;
}

// Linux dev_valid_name(): 1..15 bytes, not "." or "..", no '/', ':' or whitespace.
// We are stricter: printable ASCII letters, digits and . _ - only, so a name can
// never smuggle a zone ("eth0%x"), a path or shell syntax.
const NAME_RE = /^[A-Za-z0-9_.-]{1,15}$/;

/**
 * Interface names of THIS process's network namespace. /proc/net is per network namespace
 * (it follows the reading process), unlike /sys, which shows the namespace of whoever mounted
 * it (`unshare -n` without remounting sysfs still shows the parent's interfaces).
 */
function procNames(): Set<string> | undefined {
  try {
    const names = new Set<string>();
    for (const line of readFileSync('/proc/net/dev', 'utf8').split('\n').slice(2)) {
      const m = /^\s*([^:\s]+):/.exec(line);
      if (m) names.add(m[1]!);
    }
    return names;
  } catch {
    return undefined;
  }
}

/** ifindex by name from /proc/net/if_inet6 (interfaces with an IPv6 address). */
function procIndexes(): Map<string, number> {
  const out = new Map<string, number>();
  try {
    for (const line of readFileSync('/proc/net/if_inet6', 'utf8').split('\n')) {
      const f = line.trim().split(/\s+/);
      if (f.length === 6) out.set(f[5]!, parseInt(f[1]!, 16));
    }
  } catch {
    // IPv6 disabled in this namespace
  }
  return out;
}

function sysIndex(name: string): number | undefined {
  try {
    const raw = readFileSync(`/sys/class/net/${name}/ifindex`, 'utf8').trim();
    const n = Number(raw);
    return Number.isInteger(n) && n > 0 ? n : undefined;
  } catch {
    return undefined;
  }
}

function checkName(name: unknown): asserts name is string {
  if (typeof name !== 'string' || name.length === 0) {
    throw new InterfaceError('interface name is empty', 'ERR_INTERFACE_EMPTY');
  }
  if (!NAME_RE.test(name) || name === '.' || name === '..') {
    throw new InterfaceError(`invalid interface name '${name}'`, 'ERR_INTERFACE_INVALID');
  }
  // A purely numeric zone ('::%2') is an ifindex to the kernel and to libuv: refuse it,
  // callers must name the interface.
  if (/^[0-9]+$/.test(name)) {
    throw new InterfaceError(`interface name '${name}' is numeric; give the interface's name`, 'ERR_INTERFACE_INVALID');
  }
}

/**
 * Every interface of this network namespace (also those without addresses), from
 * /proc/net/dev; os.networkInterfaces() and /sys only when /proc is unavailable.
 */
export function listInterfaces(): InterfaceInfo[] {
  const os = networkInterfaces();
  let names = procNames();
  if (!names) {
    names = new Set<string>(Object.keys(os));
    try {
      for (const n of readdirSync('/sys/class/net')) names.add(n);
    } catch {
      // neither /proc nor /sys: os.networkInterfaces() alone
    }
  }
  const idx = procIndexes();
  return [...names].sort().map((name) => describe(name, os, idx));
}

function describe(name: string, os: ReturnType<typeof networkInterfaces>, idx: Map<string, number>): InterfaceInfo {
  const addrs = (os[name] ?? []).filter((a) => a.family === 'IPv6');
  // os.networkInterfaces() reports scopeid = ifindex for link-local addresses
  const index = idx.get(name) ?? addrs.find((a) => (a.scopeid ?? 0) > 0)?.scopeid ?? sysIndex(name) ?? 0;
  return {
    name,
    index,
    ipv6: addrs.map((a) => a.address.split('%')[0] ?? a.address),
    hasLinkLocal: addrs.some((a) => a.address.toLowerCase().startsWith('fe80:')),
  };
}

/**
 * Validate an interface name and return its description. Throws InterfaceError for an
 * empty, numeric, malformed or unknown name. Never falls back to a default interface:
 * Node/libuv silently use the default interface for '::%nosuchif', so every socket
 * option that takes '::%NAME' must go through this first.
 */
export function resolveInterface(name: string): InterfaceInfo {
  checkName(name);
  const os = networkInterfaces();
  const names = procNames();
  const exists = names ? names.has(name) : name in os || sysIndex(name) !== undefined;
  if (!exists) {
    throw new InterfaceError(`no such network interface '${name}'`, 'ERR_INTERFACE_UNKNOWN');
  }
  return describe(name, os, procIndexes());
}
