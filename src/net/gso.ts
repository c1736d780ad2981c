// UDP generic segmentation offload for sending: one system call for up to 64 equal-size datagrams.
//
// The native addon (native.ts) is optional: without it, or on a kernel or socket that refuses
// UDP_SEGMENT, McastSocket.sendBurst falls back to one datagram per call. IOTUPD_GSO=0 in the
// environment turns it off (native.ts, nativeFor).
import { constants } from 'node:os';

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
