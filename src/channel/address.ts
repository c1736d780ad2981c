import { UsageError } from '../errors.js';

/** An IPv6 address as its 16 network-order bytes. */
export type Ipv6Bytes = Uint8Array;

/**
 * Text form of an IPv6 address as RFC 5952 section 4 prescribes: lower-case hex, leading zeros
 * of each 16-bit group dropped, the longest run of two or more zero groups (the first one on a
 * tie) shortened to `::`, a single zero group left as `0`. glibc's inet_ntop (used by Librecast)
 * prints the same text, which the interop tests compare.
 */
export function formatIpv6(bytes: Uint8Array): string {
  if (bytes.length !== 16) throw new UsageError(`an IPv6 address has 16 bytes, got ${bytes.length}`);
  const groups: number[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(((bytes[i] ?? 0) << 8) | (bytes[i + 1] ?? 0));
  let bestStart = -1;
  let bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i += 1;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j += 1;
    if (j - i > bestLen) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = (g: number[]): string => g.map((v) => v.toString(16)).join(':');
  if (bestLen < 2) return hex(groups);
  return `${hex(groups.slice(0, bestStart))}::${hex(groups.slice(bestStart + bestLen))}`;
}

/**
 * Parse the text form of an IPv6 address (any RFC 4291 section 2.2 form without an embedded
 * IPv4 part or zone). Throws UsageError on anything else.
 */
export function parseIpv6(text: string): Ipv6Bytes {
  const bad = (): UsageError => new UsageError(`not an IPv6 address: '${text}'`);
  if (text.length < 2 || text.length > 39 || !/^[0-9a-fA-F:]+$/.test(text)) throw bad();
  const halves = text.split('::');
  if (halves.length > 2) throw bad();
  const groupsOf = (s: string): number[] => {
    if (s === '') return [];
    return s.split(':').map((g) => {
      if (g.length < 1 || g.length > 4) throw bad();
      return parseInt(g, 16);
    });
  };
  const head = groupsOf(halves[0] ?? '');
  const tail = halves.length === 2 ? groupsOf(halves[1] ?? '') : [];
  let groups: number[];
  if (halves.length === 2) {
    if (head.length + tail.length > 7) throw bad();
    groups = [...head, ...new Array<number>(8 - head.length - tail.length).fill(0), ...tail];
  } else {
    if (head.length !== 8) throw bad();
    groups = head;
  }
  const out = new Uint8Array(16);
  groups.forEach((g, i) => {
    out[2 * i] = g >> 8;
    out[2 * i + 1] = g & 0xff;
  });
  return out;
}

/** Canonical (RFC 5952) text for any IPv6 address text. */
export function canonicalIpv6(text: string): string {
  return formatIpv6(parseIpv6(text));
}

/** True if the bytes are an IPv6 multicast address (ff00::/8, RFC 4291 section 2.7). */
export function isMulticast(bytes: Uint8Array): boolean {
  return bytes.length === 16 && bytes[0] === 0xff;
}
