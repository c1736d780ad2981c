import { UsageError } from '../errors.js';
import { formatIpv6, isMulticast, parseIpv6 } from './address.js';
import { channelGroup, SCHEMES, SCOPES, type Scheme, type Scope } from './naming.js';

/** Where a sender sends or a receiver listens: a channel name (hashed to a group) or a group. */
export interface ChannelTarget {
  /** A Librecast channel name, hashed to its multicast group (docs/channels.md). */
  channel?: string;
  /** An explicit IPv6 multicast group instead of a channel name. */
  group?: string;
  /** Hash scheme for `channel` (default librecast). */
  scheme?: Scheme;
  /** Multicast scope for `channel` (default global). */
  scope?: Scope;
}

/**
 * The multicast group of a target: exactly one of `channel` and `group`; a group must be an IPv6
 * multicast address, a scheme and scope must be known. Every command and session resolves here.
 */
export function resolveGroup(t: ChannelTarget): string {
  if (t.channel !== undefined && t.group !== undefined) throw new UsageError('give a channel name or a group address, not both');
  if (t.group !== undefined) {
    let bytes: Uint8Array;
    try {
      bytes = parseIpv6(t.group);
    } catch {
      throw new UsageError(`group '${t.group}' is not an IPv6 address`, 'ERR_BAD_GROUP');
    }
    if (!isMulticast(bytes)) throw new UsageError(`group ${t.group} is not a multicast address (ff00::/8)`, 'ERR_BAD_GROUP');
    return formatIpv6(bytes);
  }
  if (t.channel === undefined) throw new UsageError('a channel name (or a group address) is required');
  if (t.channel.length === 0) throw new UsageError('the channel name is empty');
  const scheme = t.scheme ?? 'librecast';
  if (!SCHEMES.includes(scheme)) throw new UsageError(`scheme must be one of ${SCHEMES.join(', ')}, got '${String(scheme)}'`);
  const scope = t.scope ?? 'global';
  if (!Object.hasOwn(SCOPES, scope)) throw new UsageError(`scope must be one of ${Object.keys(SCOPES).join(', ')}, got '${String(scope)}'`);
  return channelGroup(t.channel, { scheme, scope });
}
