// UDP generic segmentation offload for sending: one system call for up to 64 equal-size datagrams.
//
// The native part (src/net/native/udp_gso.c, built by scripts/build-native.mjs) is optional:
// without it, or on a kernel or socket that refuses UDP_SEGMENT, McastSocket.sendBurst falls back
// to one datagram per call. IOTUPD_GSO=0 in the environment turns it off (for comparisons).
import { createRequire } from 'node:module';
import { constants } from 'node:os';
import type { Socket } from 'node:dgram';

interface UdpGsoAddon {
  check(fd: number): number;
  sendSegments(fd: number, datagrams: readonly Uint8Array[], from: number, count: number, segmentSize: number): number;
}

/** Most datagrams in one call (the kernel's UDP_MAX_SEGMENTS before Linux 6.9). */
export const GSO_MAX_SEGMENTS = 64;
/** Most payload bytes in one call (an IPv6 UDP datagram carries at most 65,527). */
export const GSO_MAX_BYTES = 65000;

const { EAGAIN, ENOBUFS } = constants.errno;
/** sendmsg errors after which the segments were not sent but one-by-one sending may still work. */
export const GSO_RETRY_ERRNOS: ReadonlySet<number> = new Set([EAGAIN, ENOBUFS]);
/**
 * sendmsg errors meaning "not with UDP_SEGMENT here": no kernel support, a device without
 * checksum offload, segments larger than the path MTU. The socket stops using GSO.
 */
export const GSO_UNSUPPORTED_ERRNOS: ReadonlySet<number> = new Set(
  [constants.errno.EIO, constants.errno.EINVAL, constants.errno.EOPNOTSUPP, constants.errno.ENOPROTOOPT, constants.errno.EMSGSIZE],
);

let addon: UdpGsoAddon | null | undefined;
let unavailable = '';

/** The native addon, or null (then `gsoUnavailableReason()` says why). Loaded once. */
export function gsoAddon(): UdpGsoAddon | null {
  if (addon !== undefined) return addon;
  addon = null;
  if (process.env.IOTUPD_GSO === '0') {
    unavailable = 'IOTUPD_GSO=0';
  } else if (process.platform !== 'linux') {
    unavailable = `UDP GSO is Linux-only, this is ${process.platform}`;
  } else {
    try {
      const loaded = createRequire(import.meta.url)('./native/udp_gso.node') as Partial<UdpGsoAddon>;
      if (typeof loaded.check === 'function' && typeof loaded.sendSegments === 'function') addon = loaded as UdpGsoAddon;
      else unavailable = 'udp_gso.node lacks check/sendSegments';
    } catch (err) {
      unavailable = `udp_gso.node not loaded (${(err as Error).message.split('\n')[0]}); npm run build compiles it when a C compiler is present`;
    }
  }
  return addon;
}

export function gsoUnavailableReason(): string {
  gsoAddon();
  return unavailable;
}

/**
 * The file descriptor behind a node:dgram socket, read from its libuv handle (node:dgram keeps
 * the handle under a symbol; `socket._handle` would print a deprecation warning). Undefined if
 * this Node keeps it elsewhere.
 */
export function dgramFd(sock: Socket): number | undefined {
  const sym = Object.getOwnPropertySymbols(sock).find((s) => s.description === 'state symbol');
  const state = sym ? (sock as unknown as Record<symbol, { handle?: { fd?: unknown } } | undefined>)[sym] : undefined;
  const fd = state?.handle?.fd;
  return typeof fd === 'number' && Number.isInteger(fd) && fd >= 0 ? fd : undefined;
}

/**
 * How many datagrams from `from` (before `to`) one GSO call may carry: the first sets the segment
 * size, the following must match it, one shorter datagram may end the run; at most
 * GSO_MAX_SEGMENTS and GSO_MAX_BYTES.
 */
export function segmentRun(datagrams: readonly Uint8Array[], from: number, to: number): number {
  const seg = (datagrams[from] as Uint8Array).length;
  let n = 1;
  let bytes = seg;
  while (from + n < to && n < GSO_MAX_SEGMENTS) {
    const len = (datagrams[from + n] as Uint8Array).length;
    if (len > seg || len === 0 || bytes + len > GSO_MAX_BYTES) break;
    n++;
    bytes += len;
    if (len < seg) break;
  }
  return n;
}
