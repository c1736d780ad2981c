import { isIPv6 } from 'node:net';
import { UsageError } from '../errors.js';

/** True for a zone-free IPv6 multicast address (ff00::/8). */
export function isMulticastGroup(addr: string): boolean {
  return typeof addr === 'string' && !addr.includes('%') && /^ff[0-9a-f]{2}:/i.test(addr) && isIPv6(addr);
}

/** RFC 4291 2.7 scope nibble (1 interface, 2 link, 5 site, 8 organisation, e global). */
export function multicastScope(group: string): number {
  return parseInt(group.charAt(3), 16);
}

/** RFC 4607 / RFC 3306: source-specific groups live in ff3x::/32 (flags P=1, T=1). */
export function isSourceSpecific(group: string): boolean {
  return /^ff3[0-9a-f]:0{0,4}:/i.test(group) || /^ff3[0-9a-f]::/i.test(group);
}

/** Throws UsageError unless `group` is an IPv6 multicast address without a zone. */
export function checkGroup(group: string): void {
  if (!isMulticastGroup(group)) {
    throw new UsageError(`'${String(group)}' is not an IPv6 multicast group address`, 'ERR_BAD_GROUP');
  }
}

/** Throws UsageError unless `addr` is a zone-free IPv6 unicast address (an SSM source). */
export function checkSource(addr: string): void {
  if (typeof addr !== 'string' || addr.includes('%') || !isIPv6(addr) || /^ff/i.test(addr) || addr === '::') {
    throw new UsageError(`'${String(addr)}' is not an IPv6 unicast source address`, 'ERR_BAD_SOURCE');
  }
}

/** Throws UsageError unless `port` is an integer in 1..65535 (0 allowed when `allowZero`). */
export function checkPort(port: number, allowZero = false): void {
  if (!Number.isInteger(port) || port < (allowZero ? 0 : 1) || port > 65535) {
    throw new UsageError(`port must be an integer from ${allowZero ? 0 : 1} to 65535, got ${String(port)}`, 'ERR_BAD_PORT');
  }
}
