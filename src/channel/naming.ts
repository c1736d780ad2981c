import { blake3 } from '@noble/hashes/blake3.js';
import { sha3_512 } from '@noble/hashes/sha3.js';
import { UsageError } from '../errors.js';
import { formatIpv6, type Ipv6Bytes } from './address.js';

/**
 * Channel names to IPv6 multicast groups ("multicast DNS"). See docs/channels.md.
 *
 * - `librecast`: Librecast 0.5.1 lc_channel_new/lc_channel_nnew. lc_hashgroup() hashes the name
 *   bytes followed by the 4-byte `flags` word (always 0 there) with BLAKE3 (32-byte output) and
 *   XORs digest[2..15] into the base address ff1e:: (so, into zeros: a copy).
 * - `sha3`: the FOSDEM 2020 Librecast talk: SHA3-512(name), digest[0..13] -> addr[2..15].
 */
export type Scheme = 'librecast' | 'sha3';
export const SCHEMES: readonly Scheme[] = ['librecast', 'sha3'];

/**
 * Multicast scope (RFC 4291 section 2.7 / RFC 7346). Librecast itself always uses global (e);
 * the other scopes keep the same 112 hashed bits and change only the scope nibble.
 */
export type Scope = 'link' | 'site' | 'org' | 'global';
export const SCOPES: Readonly<Record<Scope, number>> = { link: 0x2, site: 0x5, org: 0x8, global: 0xe };

/** Librecast's LC_DEFAULT_PORT. */
export const DEFAULT_PORT = 4242;

export interface GroupOptions {
  /** Hash scheme, default `librecast`. */
  scheme?: Scheme;
  /** Multicast scope, default `global`. */
  scope?: Scope;
  /** Map into the source-specific range ff3x::/96 (RFC 4607) instead of ff1x::/16. */
  ssm?: boolean;
}

/** Channel names are UTF-8 strings or raw bytes (lc_channel_nnew takes any bytes). */
export type ChannelName = string | Uint8Array;

export function nameBytes(name: ChannelName): Uint8Array {
  return typeof name === 'string' ? new TextEncoder().encode(name) : name;
}

function checkScheme(scheme: unknown): Scheme {
  if (scheme === 'librecast' || scheme === 'sha3') return scheme;
  throw new UsageError(`unknown channel scheme '${String(scheme)}' (librecast or sha3)`);
}

export function scopeNibble(scope: unknown): number {
  if (typeof scope === 'string' && Object.hasOwn(SCOPES, scope)) return SCOPES[scope as Scope];
  throw new UsageError(`unknown multicast scope '${String(scope)}' (link, site, org or global)`);
}

/**
 * The any-source group of a name in global scope (ff1e::/16): the form both schemes define and
 * the one every other form (other scopes, SSM, sidebands) is derived from.
 */
export function hashGroup(name: ChannelName, scheme: Scheme = 'librecast'): Ipv6Bytes {
  const bytes = nameBytes(name);
  const addr = new Uint8Array(16);
  addr[0] = 0xff;
  addr[1] = 0x1e;
  if (checkScheme(scheme) === 'librecast') {
    const input = new Uint8Array(bytes.length + 4); // + the 4 zero bytes of lc_hashgroup's `flags`
    input.set(bytes);
    addr.set(blake3(input).subarray(2, 16), 2);
  } else {
    addr.set(sha3_512(bytes).subarray(0, 14), 2);
  }
  return addr;
}

/** Replace the scope nibble (low 4 bits of byte 1) of a multicast address. */
export function withScope(addr: Ipv6Bytes, scope: Scope): Ipv6Bytes {
  const out = new Uint8Array(addr);
  out[1] = ((addr[1] ?? 0) & 0xf0) | scopeNibble(scope);
  return out;
}

/**
 * Source-specific form of an any-source group address. RFC 4607 section 1 allows only
 * ff3x::/96 for SSM today, so only 32 bits of group ID remain; RFC 3307 section 4.3 reserves
 * 0x80000000-0xffffffff for dynamic allocation by hosts. The group ID is therefore
 * 0x80000000 | (first 4 bytes, big-endian, of BLAKE3(addr)) where addr is the 16-byte ff1e
 * group (a sideband or sidehash group included), so that every distinct any-source group,
 * sidebands that differ only in their low bits as well, gets an independent 31-bit ID.
 * (S,G) channels are also keyed by the source, so collisions matter only per sender.
 */
export function ssmGroup(asmGlobal: Ipv6Bytes, scope: Scope = 'global'): Ipv6Bytes {
  const id = blake3(asmGlobal).subarray(0, 4);
  const out = new Uint8Array(16);
  out[0] = 0xff;
  out[1] = 0x30 | scopeNibble(scope);
  out.set(id, 12);
  out[12] = (out[12] ?? 0) | 0x80;
  return out;
}

/** Group bytes for a name: hash, then scope, or SSM mapping. */
export function groupBytes(name: ChannelName, options: GroupOptions = {}): Ipv6Bytes {
  const global = hashGroup(name, options.scheme ?? 'librecast');
  return placeGroup(global, options);
}

/** Apply scope / SSM options to an ff1e any-source group. */
export function placeGroup(asmGlobal: Ipv6Bytes, options: Pick<GroupOptions, 'scope' | 'ssm'> = {}): Ipv6Bytes {
  const scope = options.scope ?? 'global';
  scopeNibble(scope);
  return options.ssm === true ? ssmGroup(asmGlobal, scope) : withScope(asmGlobal, scope);
}

/** The group address (RFC 5952 text) of a channel name. */
export function channelGroup(name: ChannelName, options: GroupOptions = {}): string {
  return formatIpv6(groupBytes(name, options));
}

/**
 * lc_channel_sideband: the low 64 bits of the group replaced by `band` stored in the host's byte
 * order. Librecast's Debian builds are little-endian (x86-64, arm64), so we always write
 * little-endian: band 1 gives ...:100::, 0x0102030405060708 gives ...:807:605:403:201.
 */
export function sidebandGroup(base: Ipv6Bytes, band: bigint): Ipv6Bytes {
  if (typeof band !== 'bigint' || band < 0n || band > 0xffff_ffff_ffff_ffffn) {
    throw new UsageError(`sideband must be an unsigned 64-bit integer, got ${String(band)}`);
  }
  const out = new Uint8Array(base);
  new DataView(out.buffer, out.byteOffset, 16).setBigUint64(8, band, true);
  return out;
}

/** lc_channel_sidehash key length: BLAKE3 keyed mode reads exactly 32 key bytes. */
export const SIDEHASH_KEY_BYTES = 32;

/**
 * lc_channel_sidehash: addr[2..15] = BLAKE3-keyed(key, base address as 16 bytes), 14 bytes of
 * output. Librecast 0.5.1 hash_generic_key() ignores `keylen` and always reads 32 key bytes
 * (a shorter key is an out-of-bounds read there), so only 32-byte keys are compatible and
 * anything else is refused here.
 */
export function sidehashGroup(base: Ipv6Bytes, key: Uint8Array): Ipv6Bytes {
  if (!(key instanceof Uint8Array) || key.length !== SIDEHASH_KEY_BYTES) {
    throw new UsageError(`sidehash key must be ${SIDEHASH_KEY_BYTES} bytes`);
  }
  const out = new Uint8Array(base);
  out.set(blake3(base, { key, dkLen: 14 }), 2);
  return out;
}
