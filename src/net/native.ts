// The optional native addon (src/net/native/udp_batch.c, built by scripts/build-native.mjs):
// many datagrams per system call, UDP GSO to send (gso.ts) and recvmmsg() to receive
// (McastSocket.onDatagrams). Without it McastSocket makes one system call per datagram, as
// node:dgram does. It also lets a receiver bound glibc's malloc arenas (mallocArenaMax).
import { createRequire } from 'node:module';
import type { Socket } from 'node:dgram';

export interface UdpBatchAddon {
  check(fd: number): number;
  sendSegments(fd: number, datagrams: readonly Uint8Array[], from: number, count: number, segmentSize: number): number;
  recvStart(fd: number, slot: number, batch: number, lengths: Int32Array, callback: (buffer: ArrayBuffer, count: number) => void): RecvHandle;
  recvStop(handle: RecvHandle): void;
  /** mallopt(M_ARENA_MAX, n); 1 when glibc took it, 0 otherwise (not glibc). */
  mallocArenaMax(n: number): number;
}

/** What recvStart returns (an N-API External). */
export type RecvHandle = { readonly __brand: 'RecvHandle' };

let addon: UdpBatchAddon | null | undefined;
let unavailable = '';

/** The native addon, or null (then `nativeUnavailableReason()` says why). Loaded once. */
export function nativeAddon(): UdpBatchAddon | null {
  if (addon !== undefined) return addon;
  addon = null;
  if (process.platform !== 'linux') {
    unavailable = `the native addon is Linux-only, this is ${process.platform}`;
    return addon;
  }
  try {
    const loaded = createRequire(import.meta.url)('./native/udp_batch.node') as Partial<UdpBatchAddon>;
    const names = ['check', 'sendSegments', 'recvStart', 'recvStop', 'mallocArenaMax'] as const;
    const missing = names.filter((n) => typeof loaded[n] !== 'function');
    if (missing.length === 0) addon = loaded as UdpBatchAddon;
    else unavailable = `udp_batch.node lacks ${missing.join(', ')} (stale build: npm run build)`;
  } catch (err) {
    unavailable = `udp_batch.node not loaded (${(err as Error).message.split('\n')[0]}); npm run build compiles it when a C compiler is present`;
  }
  return addon;
}

export function nativeUnavailableReason(): string {
  nativeAddon();
  return unavailable;
}

/** The environment switch of each batched path: `NAME=0` turns it off (for comparisons). */
export type NativeSwitch = 'IOTUPD_GSO' | 'IOTUPD_RECVMMSG';

/** The addon for one batched path, or null with the reason (its switch, or the addon's absence). */
export function nativeFor(name: NativeSwitch): { addon: UdpBatchAddon | null; reason: string } {
  if (process.env[name] === '0') return { addon: null, reason: `${name}=0` };
  const addon = nativeAddon();
  return { addon, reason: addon ? '' : unavailable };
}

interface UdpHandle {
  fd?: unknown;
  recvStart?: () => number;
  recvStop?: () => number;
}

/**
 * node:dgram's libuv handle (kept under a symbol; `socket._handle` would print a deprecation
 * warning). Undefined if this Node keeps it elsewhere.
 */
export function dgramHandle(sock: Socket): UdpHandle | undefined {
  const sym = Object.getOwnPropertySymbols(sock).find((s) => s.description === 'state symbol');
  const state = sym ? (sock as unknown as Record<symbol, { handle?: UdpHandle } | undefined>)[sym] : undefined;
  return state?.handle ?? undefined;
}

/** The file descriptor behind a node:dgram socket, or undefined. */
export function dgramFd(sock: Socket): number | undefined {
  const fd = dgramHandle(sock)?.fd;
  return typeof fd === 'number' && Number.isInteger(fd) && fd >= 0 ? fd : undefined;
}
