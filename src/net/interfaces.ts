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
 * Every interface of this network namespace: the union of /sys/class/net (which also
 * lists interfaces without addresses) and os.networkInterfaces().
 */
export function listInterfaces(): InterfaceInfo[] {
  const os = networkInterfaces();
  const names = new Set<string>(Object.keys(os));
  try {
    for (const n of readdirSync('/sys/class/net')) names.add(n);
  } catch {
    // no sysfs (unusual): os.networkInterfaces() alone
  }
  const out: InterfaceInfo[] = [];
  for (const name of [...names].sort()) {
    const info = describe(name, os);
    if (info) out.push(info);
  }
  return out;
}

function describe(name: string, os: ReturnType<typeof networkInterfaces>): InterfaceInfo | undefined {
  const addrs = (os[name] ?? []).filter((a) => a.family === 'IPv6');
  let index = sysIndex(name);
  if (index === undefined) {
    // os.networkInterfaces() reports scopeid = ifindex for link-local addresses.
    const ll = addrs.find((a) => a.scopeid !== undefined && a.scopeid > 0);
    index = ll?.scopeid;
  }
  if (index === undefined && !(name in os)) return undefined;
  return {
    name,
    index: index ?? 0,
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
  const info = describe(name, networkInterfaces());
  if (!info || info.index <= 0) {
    throw new InterfaceError(`no such network interface '${name}'`, 'ERR_INTERFACE_UNKNOWN');
  }
  return info;
}
