/**
 * iotupd/net: the only module that touches node:dgram.
 *
 *   resolveInterface(name)      validate a name against this namespace's interfaces
 *                               (InterfaceError for '', numeric, malformed or unknown names;
 *                               never a fallback to the default interface)
 *   listInterfaces()            every interface of this namespace (also ones without addresses)
 *   McastSocket.open(opts)      bind [bindAddress]:port (default [::]:4242), set the multicast
 *                               interface to '::%IFNAME', hop limit (255), loopback (off),
 *                               SO_RCVBUF (8 MiB requested; `recvBufferSize` = granted)
 *     .join(group, source?)     any-source or source-specific (ff3x::/32) membership
 *     .leave(group, source?)
 *     .connect(group, port?)    send-only sockets: later sends skip address parsing (faster)
 *     .send(bytes, group, port?)      Promise, rejects with SocketError
 *     .trySend(bytes, group, port?)   fast path: false while libuv's queue is non-empty;
 *     .drain()                        then await drain() and retry; bytes are copied, so the
 *                                     caller may reuse its buffer at once
 *     .sendBurst(datagrams, from, to, group, port?)
 *                               as many as the kernel takes now (0: drain and retry); on a
 *                               connected socket a run of equal-size datagrams is one
 *                               sendmsg() with UDP GSO (src/net/gso.ts, optional native addon)
 *     .gso                      { enabled, reason }: whether sendBurst uses GSO, why not
 *     for await (const d of sock) / sock.messages(signal?)
 *                               { data, from, port } through a bounded queue (overflow counted
 *                               in stats.queueDrops); ends on close() or abort
 *     .onMessage(cb)            synchronous fast receive path (bypasses the queue)
 *     .onDatagrams(cb)          fastest: cb(data) per datagram, no source address; recvmmsg()
 *                               reads up to 64 per system call through the native addon
 *     .recvBatch                { enabled, reason }: whether onDatagrams uses recvmmsg, why not
 *     .stats                    sent, gsoCalls, bytesSent, sendErrors, received, bytesReceived,
 *                               queueDrops, truncated
 *     .close()                  idempotent, resolves when the socket is closed; opts.signal
 *                               aborting closes too
 */
export { listInterfaces, resolveInterface, type InterfaceInfo } from './interfaces.js';
export { GSO_MAX_SEGMENTS, GSO_MAX_BYTES } from './gso.js';
export { nativeAddon, nativeUnavailableReason, nativeFor, type NativeSwitch } from './native.js';
export { isMulticastGroup, isSourceSpecific, multicastScope, checkGroup, checkSource, checkPort } from './address.js';
export {
  McastSocket,
  SocketError,
  DEFAULT_PORT,
  DEFAULT_HOP_LIMIT,
  DEFAULT_RECV_BUFFER,
  DEFAULT_QUEUE_LIMIT,
  type McastSocketOptions,
  type McastSocketStats,
  type Datagram,
} from './socket.js';
