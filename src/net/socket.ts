import { createSocket, type Socket, type RemoteInfo } from 'node:dgram';
import { getSystemErrorName } from 'node:util';
import { IotupdError, UsageError } from '../errors.js';
import { resolveInterface, type InterfaceInfo } from './interfaces.js';
import { checkGroup, checkPort, checkSource, isMulticastGroup, multicastScope } from './address.js';
import { segmentRun, GSO_RETRY_ERRNOS, GSO_UNSUPPORTED_ERRNOS } from './gso.js';
import { dgramFd, dgramHandle, nativeFor, type RecvHandle, type UdpBatchAddon } from './native.js';

/** Librecast's default UDP port. */
export const DEFAULT_PORT = 4242;
/** Librecast's default multicast hop limit. */
export const DEFAULT_HOP_LIMIT = 255;
/** Receive buffer we ask for: at ~50k datagrams/s of 1200 B the default (~200 KiB) overflows. */
export const DEFAULT_RECV_BUFFER = 8 * 1024 * 1024;
/** Datagrams held for a slow async-iterator consumer before new ones are dropped (and counted). */
export const DEFAULT_QUEUE_LIMIT = 4096;

/** A socket failure after open (bind, membership, send). */
export class SocketError extends IotupdError {
  constructor(message: string, code = 'ERR_SOCKET', options?: { cause?: unknown }) {
    super(code, message, options);
  }
}

export interface McastSocketOptions {
  /** Interface name, validated with resolveInterface(); never a default. */
  interface: string;
  /** UDP port to bind and the default destination port (default 4242). 0 binds an ephemeral port. */
  port?: number;
  /**
   * Local address to bind (default '::'). Binding to a group address makes the kernel deliver
   * only that group's datagrams to this socket (a socket bound to [::]:PORT also receives groups
   * joined by any other socket of the namespace on PORT).
   */
  bindAddress?: string;
  /** Multicast hop limit 0..255 (default 255, as Librecast). */
  hopLimit?: number;
  /** Receive our own multicast on this host (default false, as Librecast). */
  loopback?: boolean;
  /** SO_RCVBUF request in bytes (default 8 MiB). The kernel caps it at net.core.rmem_max. */
  recvBufferSize?: number;
  /** SO_SNDBUF request in bytes (default: kernel default). */
  sendBufferSize?: number;
  /** Async-iterator queue bound, in datagrams (default 4096). */
  queueLimit?: number;
  /** Aborting closes the socket (iterators end). */
  signal?: AbortSignal;
}

/** One received datagram. `data` is owned by the consumer (a fresh Buffer per datagram). */
export interface Datagram {
  data: Uint8Array;
  /** Source address (link-local sources carry a '%zone'). */
  from: string;
  /** Source UDP port. */
  port: number;
}

export interface McastSocketStats {
  /** Datagrams handed to the kernel (send, trySend, sendBurst). */
  sent: number;
  /** sendmsg calls that carried several datagrams by UDP GSO (sendBurst). */
  gsoCalls: number;
  bytesSent: number;
  /** Send failures seen (send() rejects; trySend failures are sampled, see trySend). */
  sendErrors: number;
  /** Datagrams received from the kernel. */
  received: number;
  bytesReceived: number;
  /** Datagrams dropped because the iterator queue was full (slow consumer). */
  queueDrops: number;
  /** Datagrams lost because they were longer than the batch receive slot (onDatagrams; the slot then grows to 64 KiB). */
  truncated: number;
}

/** Largest UDP payload over IPv6 without jumbograms (65535 - 8-byte UDP header). */
const MAX_DATAGRAM = 65527;

/** Datagrams per recvmmsg() in batch receive (onDatagrams). */
const RX_BATCH = 64;
/** Bytes per datagram slot in batch receive: a 1280-byte path MTU's datagrams and more. Longer ones grow it to RX_MAX_SLOT. */
const RX_SLOT = 2048;
const RX_MAX_SLOT = 65536;

/** Sampling period of trySend error reporting (one datagram in N carries a completion callback). */
const TRY_SEND_CHECK_EVERY = 256;

interface Waiter {
  settle(r: IteratorResult<Datagram>): void;
  fail(e: Error): void;
}

/**
 * An IPv6 UDP socket for multicast on one validated interface, shaped after Librecast's
 * socket: bind, join/part groups (any-source or source-specific), send raw datagrams,
 * receive as an async iterable. The only place besides src/net/* that sees node:dgram.
 *
 * Order matters (docs/lab.md, "The socket layer": order of operations): bind first, then set
 * the multicast interface by '::%IFNAME' (after validation), then join. addMembership before
 * bind() silently binds a random port.
 */
export class McastSocket implements AsyncIterable<Datagram> {
  readonly interface: InterfaceInfo;
  readonly port: number;
  readonly bindAddress: string;
  readonly stats: McastSocketStats = { sent: 0, gsoCalls: 0, bytesSent: 0, sendErrors: 0, received: 0, bytesReceived: 0, queueDrops: 0, truncated: 0 };
  /** Last send error seen (sampled for trySend). */
  lastSendError: Error | undefined;

  readonly #sock: Socket;
  readonly #zone: string;
  readonly #queueLimit: number;
  #queue: Datagram[] = [];
  #qHead = 0;
  #waiters: Waiter[] = [];
  #onMessage: ((d: Datagram) => void) | undefined;
  #onDatagram: ((data: Uint8Array) => void) | undefined;
  #rx: { handle: RecvHandle; addon: UdpBatchAddon; lengths: Int32Array; slot: number; restart: () => void } | undefined;
  #rxOff = 'onDatagrams not in use';
  #closed = false;
  #closePromise: Promise<void> | undefined;
  #error: Error | undefined;
  #signal: AbortSignal | undefined;
  #onAbort: (() => void) | undefined;
  #memberships = new Set<string>();
  #trySendCount = 0;
  #lastGroup = '';
  #lastPort = -1;
  #connected: { group: string; port: number } | undefined;
  #gso: { fd: number; send: UdpBatchAddon['sendSegments'] } | undefined;
  #gsoOff = 'socket not connected';
  #slot = new Uint8Array(2048);
  #view = this.#slot.subarray(0, 0);
  #drainWaiters: (() => void)[] = [];
  #drainPolling = false;
  readonly #recvRequested: number;

  private constructor(sock: Socket, iface: InterfaceInfo, port: number, bindAddress: string, queueLimit: number, recvRequested: number) {
    this.#sock = sock;
    this.interface = iface;
    this.#zone = `::%${iface.name}`;
    this.port = port;
    this.bindAddress = bindAddress;
    this.#queueLimit = queueLimit;
    this.#recvRequested = recvRequested;
  }

  /** Create, bind and configure a socket. Rejects with InterfaceError/UsageError/SocketError. */
  static async open(opts: McastSocketOptions): Promise<McastSocket> {
    if (opts.signal?.aborted) throw new SocketError('aborted before open', 'ERR_ABORTED');
    const iface = resolveInterface(opts.interface);
    const port = opts.port ?? DEFAULT_PORT;
    checkPort(port, true);
    const hopLimit = opts.hopLimit ?? DEFAULT_HOP_LIMIT;
    if (!Number.isInteger(hopLimit) || hopLimit < 0 || hopLimit > 255) {
      throw new UsageError(`hopLimit must be an integer from 0 to 255, got ${String(hopLimit)}`, 'ERR_BAD_HOP_LIMIT');
    }
    const recvBuf = opts.recvBufferSize ?? DEFAULT_RECV_BUFFER;
    checkBufferSize('recvBufferSize', recvBuf);
    if (opts.sendBufferSize !== undefined) checkBufferSize('sendBufferSize', opts.sendBufferSize);
    const queueLimit = opts.queueLimit ?? DEFAULT_QUEUE_LIMIT;
    if (!Number.isInteger(queueLimit) || queueLimit < 1 || queueLimit > 1 << 20) {
      throw new UsageError(`queueLimit must be an integer from 1 to ${1 << 20}`, 'ERR_BAD_QUEUE_LIMIT');
    }
    let bindAddress = opts.bindAddress ?? '::';
    if (bindAddress !== '::') {
      if (!isMulticastGroup(bindAddress)) {
        throw new UsageError(`bindAddress must be '::' or a multicast group, got '${bindAddress}'`, 'ERR_BAD_BIND_ADDRESS');
      }
      // Interface- and link-scope groups need a zone to bind (the kernel wants sin6_scope_id).
      if (multicastScope(bindAddress) <= 2) bindAddress = `${bindAddress}%${iface.name}`;
    }

    const sock = createSocket({
      type: 'udp6',
      reuseAddr: true,
      // Every address we pass is an IP literal we validated: skip dns.lookup, which costs a
      // process.nextTick per send() and a measurable share of the send rate (docs/lab.md).
      lookup: literalLookup,
    });
    await new Promise<void>((resolve, reject) => {
      const onError = (err: Error): void => {
        sock.close();
        reject(new SocketError(`cannot bind [${bindAddress}]:${port} on ${iface.name}: ${err.message}`, 'ERR_BIND', { cause: err }));
      };
      sock.once('error', onError);
      sock.bind({ address: bindAddress, port, exclusive: false }, () => {
        sock.off('error', onError);
        resolve();
      });
    });
    const boundPort = sock.address().port;
    const ms = new McastSocket(sock, iface, boundPort, opts.bindAddress ?? '::', queueLimit, recvBuf);
    try {
      sock.setMulticastInterface(ms.#zone);
      sock.setMulticastTTL(hopLimit);
      sock.setMulticastLoopback(opts.loopback ?? false);
      sock.setRecvBufferSize(recvBuf);
      if (opts.sendBufferSize !== undefined) sock.setSendBufferSize(opts.sendBufferSize);
    } catch (err) {
      sock.close();
      throw new SocketError(`cannot configure socket on ${iface.name}: ${(err as Error).message}`, 'ERR_SOCKET_OPTION', { cause: err });
    }
    sock.on('message', (msg: Buffer, rinfo: RemoteInfo) => ms.#deliver(msg, rinfo));
    sock.on('error', (err: Error) => ms.#fail(err));
    if (opts.signal) {
      if (opts.signal.aborted) {
        await ms.close();
        throw new SocketError('aborted during open', 'ERR_ABORTED');
      }
      ms.#signal = opts.signal;
      ms.#onAbort = () => void ms.close();
      opts.signal.addEventListener('abort', ms.#onAbort, { once: true });
    }
    return ms;
  }

  /** Receive buffer size the kernel granted (getsockopt SO_RCVBUF; Linux reports twice the usable size). */
  get recvBufferSize(): number {
    return this.#closed ? 0 : this.#sock.getRecvBufferSize();
  }

  /** What open() asked for. */
  get recvBufferRequested(): number {
    return this.#recvRequested;
  }

  get sendBufferSize(): number {
    return this.#closed ? 0 : this.#sock.getSendBufferSize();
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Datagrams queued in libuv waiting for the kernel (the send path is back-pressured when > 0). */
  get sendQueueCount(): number {
    return this.#closed ? 0 : this.#sock.getSendQueueCount();
  }

  /** Join `group` on our interface; with `source`, a source-specific join (RFC 4607, ff3x::/32). */
  join(group: string, source?: string): void {
    this.#checkOpen();
    checkGroup(group);
    if (source !== undefined) checkSource(source);
    const key = membershipKey(group, source);
    if (this.#memberships.has(key)) return;
    try {
      if (source === undefined) {
        this.#sock.addMembership(group, this.#zone);
      } else {
        this.#sock.addSourceSpecificMembership(source, group, this.#zone);
      }
    } catch (err) {
      throw new SocketError(`cannot join ${key} on ${this.interface.name}: ${(err as Error).message}`, 'ERR_JOIN', { cause: err });
    }
    this.#memberships.add(key);
  }

  /** Leave (part) a group joined with the same arguments. Leaving a group not joined is a no-op. */
  leave(group: string, source?: string): void {
    this.#checkOpen();
    checkGroup(group);
    if (source !== undefined) checkSource(source);
    const key = membershipKey(group, source);
    if (!this.#memberships.has(key)) return;
    try {
      if (source === undefined) this.#sock.dropMembership(group, this.#zone);
      else this.#sock.dropSourceSpecificMembership(source, group, this.#zone);
    } catch (err) {
      throw new SocketError(`cannot leave ${key} on ${this.interface.name}: ${(err as Error).message}`, 'ERR_LEAVE', { cause: err });
    }
    this.#memberships.delete(key);
  }

  /** Groups currently joined, as 'group' or 'source->group'. */
  get memberships(): string[] {
    return [...this.#memberships];
  }

  /**
   * Connect the socket to one group: every later send goes there, and the kernel skips the
   * per-datagram address parsing and route lookup (node:dgram sends noticeably more datagrams per
   * second connected: docs/benchmarks.md, "Sockets"). A connected UDP socket only accepts
   * datagrams from its peer, and a group is never a source: use connect() on send-only sockets
   * (port 0). Afterwards send/trySend must name this group and port (or omit the port).
   */
  async connect(group: string, port: number = this.port): Promise<void> {
    this.#checkOpen();
    checkGroup(group);
    checkPort(port);
    if (this.#connected) {
      if (this.#connected.group === group && this.#connected.port === port) return;
      throw new UsageError(`socket is already connected to [${this.#connected.group}]:${this.#connected.port}`, 'ERR_SOCKET_CONNECTED');
    }
    await new Promise<void>((resolve, reject) => {
      this.#sock.connect(port, group, (err?: Error) => {
        if (err) reject(new SocketError(`cannot connect to [${group}]:${port}: ${err.message}`, 'ERR_CONNECT', { cause: err }));
        else resolve();
      });
    });
    this.#connected = { group, port };
    this.#lastGroup = '';
    this.#enableGso();
  }

  /** sendBurst may use UDP GSO once connected, if the native addon loaded and accepts this socket. */
  #enableGso(): void {
    const { addon, reason } = nativeFor('IOTUPD_GSO');
    if (!addon) {
      this.#gsoOff = reason;
      return;
    }
    const fd = dgramFd(this.#sock);
    if (fd === undefined) {
      this.#gsoOff = 'no file descriptor on the node:dgram handle';
      return;
    }
    const r = addon.check(fd);
    if (r !== 0) {
      this.#gsoOff = `socket check failed (${errnoName(r)})`;
      return;
    }
    this.#gso = { fd, send: addon.sendSegments };
    this.#gsoOff = '';
  }

  /** Whether sendBurst uses UDP GSO, and if not, why. */
  get gso(): { enabled: boolean; reason: string } {
    return { enabled: this.#gso !== undefined, reason: this.#gsoOff };
  }

  /** The group this socket is connected to, if any. */
  get connectedTo(): { group: string; port: number } | undefined {
    return this.#connected ? { ...this.#connected } : undefined;
  }

  #defaultPort(): number {
    return this.#connected?.port ?? this.port;
  }

  #checkConnected(group: string, port: number): void {
    const c = this.#connected;
    if (c && (c.group !== group || c.port !== port)) {
      throw new UsageError(`socket is connected to [${c.group}]:${c.port}, cannot send to [${group}]:${port}`, 'ERR_SOCKET_CONNECTED');
    }
  }

  /** Send one datagram and wait until the kernel took it (keep `bytes` unchanged until then). Rejects with SocketError. */
  send(bytes: Uint8Array, group: string, port: number = this.#defaultPort()): Promise<void> {
    try {
      this.#checkOpen();
      checkGroup(group);
      checkPort(port);
      this.#checkConnected(group, port);
    } catch (err) {
      return Promise.reject(err as Error);
    }
    return new Promise((resolve, reject) => {
      const done = (err: Error | null): void => {
        if (err) {
          this.stats.sendErrors++;
          this.lastSendError = err;
          reject(new SocketError(`send to [${group}]:${port} failed: ${err.message}`, 'ERR_SEND', { cause: err }));
        } else {
          resolve();
        }
      };
      if (this.#connected) this.#sock.send(bytes, done);
      else this.#sock.send(bytes, port, group, done);
      this.stats.sent++;
      this.stats.bytesSent += bytes.length;
    });
  }

  /**
   * Fast path: hand one datagram to the kernel without a promise. Returns false, sending
   * nothing, while an earlier datagram still waits in libuv's queue (the kernel's send
   * buffer was full): then `await drain()` and retry.
   * `bytes` is copied into a socket-owned buffer, so the caller may reuse it at once. One
   * buffer suffices: we only send when libuv's queue is empty, and a queued datagram is the
   * only thing that could still reference it.
   * Errors are sampled: one datagram in 256 carries a completion callback that counts
   * failures in stats.sendErrors / lastSendError. `group` and `port` are validated when they change.
   */
  trySend(bytes: Uint8Array, group: string, port: number = this.#defaultPort()): boolean {
    if (this.#closed) return false;
    this.#checkDestination(group, port);
    const sock = this.#sock;
    if (sock.getSendQueueCount() > 0) return false;
    const n = bytes.length;
    if (n > this.#slot.length) {
      if (n > MAX_DATAGRAM) throw new UsageError(`datagram of ${n} bytes exceeds ${MAX_DATAGRAM}`, 'ERR_DATAGRAM_SIZE');
      this.#slot = new Uint8Array(Math.max(n, 2 * this.#slot.length));
      this.#view = this.#slot.subarray(0, 0);
    }
    this.#slot.set(bytes);
    // datagrams of one stream usually share a length: reuse the view instead of allocating one
    if (this.#view.length !== n) this.#view = this.#slot.subarray(0, n);
    const view = this.#view;
    const cb = ++this.#trySendCount % TRY_SEND_CHECK_EVERY === 0 ? this.#sampleCallback : undefined;
    if (this.#connected) sock.send(view, cb);
    else sock.send(view, port, group, cb);
    this.stats.sent++;
    this.stats.bytesSent += n;
    return true;
  }

  #checkDestination(group: string, port: number): void {
    if (group !== this.#lastGroup || port !== this.#lastPort) {
      checkGroup(group); // never let an unchecked (e.g. unicast) address through the fast path
      checkPort(port);
      this.#checkConnected(group, port);
      this.#lastGroup = group;
      this.#lastPort = port;
    }
  }

  /**
   * Hand `datagrams[from .. to-1]` to the kernel, as many as it takes now, and return how many.
   * On a connected socket with UDP GSO (see `gso`), a run of equal-size datagrams (the last may
   * be shorter; at most 64 and 65,000 bytes) goes in one system call, without copying; otherwise
   * datagrams go one by one through trySend. 0 means libuv's queue is non-empty: `await drain()`
   * and call again. The caller must not change the datagrams until this returns.
   * A failed GSO call that is not back-pressure is counted in stats.sendErrors / lastSendError
   * and its datagrams are given up, as a failed trySend's would be; one that means "no GSO
   * here" (EIO, EINVAL, EOPNOTSUPP, ENOPROTOOPT, EMSGSIZE) turns GSO off for this socket.
   */
  sendBurst(datagrams: readonly Uint8Array[], from: number, to: number, group: string, port: number = this.#defaultPort()): number {
    if (this.#closed || from >= to) return 0;
    this.#checkDestination(group, port);
    const gso = this.#gso;
    if (gso !== undefined && to - from >= 2) {
      if (this.#sock.getSendQueueCount() > 0) return 0; // never overtake libuv's queue
      const n = segmentRun(datagrams, from, to);
      if (n >= 2) {
        // sendSegments returns n, or -errno
        const r = gso.send(gso.fd, datagrams, from, n, (datagrams[from] as Uint8Array).length);
        if (r < 0 && GSO_UNSUPPORTED_ERRNOS.has(-r)) {
          this.#gso = undefined;
          this.#gsoOff = `sendmsg with UDP_SEGMENT failed (${errnoName(r)})`;
        } else if (r === n || !GSO_RETRY_ERRNOS.has(-r)) {
          if (r !== n) {
            this.stats.sendErrors++;
            this.lastSendError = new SocketError(`sendmsg of ${n} datagrams failed: ${errnoName(r)}`, 'ERR_SEND');
          }
          let bytes = 0;
          for (let i = from; i < from + n; i++) bytes += (datagrams[i] as Uint8Array).length;
          this.stats.sent += n;
          this.stats.bytesSent += bytes;
          this.stats.gsoCalls++;
          return n;
        }
        // GSO refused for this socket, or EAGAIN / ENOBUFS (the kernel's buffer is full): one by
        // one through trySend, which lets libuv queue and wait.
      }
    }
    return this.#sendEach(datagrams, from, to, group, port);
  }

  #sendEach(datagrams: readonly Uint8Array[], from: number, to: number, group: string, port: number): number {
    let k = 0;
    while (from + k < to && this.trySend(datagrams[from + k] as Uint8Array, group, port)) k++;
    return k;
  }

  readonly #sampleCallback = (err: Error | null): void => {
    if (err) {
      this.stats.sendErrors++;
      this.lastSendError = err;
    }
  };

  /** Resolves when libuv's send queue is empty (immediately if it is, or when closed). */
  drain(): Promise<void> {
    if (this.#closed || this.#sock.getSendQueueCount() === 0) return Promise.resolve();
    return new Promise((resolve) => {
      this.#drainWaiters.push(resolve);
      if (!this.#drainPolling) {
        this.#drainPolling = true;
        setImmediate(this.#pollDrain);
      }
    });
  }

  // node:dgram has no 'drain' event; poll once per event-loop turn (the loop is busy
  // flushing the queue anyway, so this costs nothing measurable).
  readonly #pollDrain = (): void => {
    if (!this.#closed && this.#sock.getSendQueueCount() > 0) {
      setImmediate(this.#pollDrain);
      return;
    }
    this.#drainPolling = false;
    const w = this.#drainWaiters;
    this.#drainWaiters = [];
    for (const r of w) r();
  };

  /**
   * Fast receive path: `cb` is called synchronously for every datagram, bypassing the
   * iterator queue (iterators then see nothing). Pass undefined to go back to the queue.
   */
  onMessage(cb: ((d: Datagram) => void) | undefined): void {
    this.#stopBatch();
    this.#onDatagram = undefined;
    this.#onMessage = cb;
  }

  /**
   * Fastest receive path: `cb(data)` for every datagram, without its source address. With the
   * native addon, recvmmsg() reads up to 64 datagrams per system call and each arrives as a view
   * of one fresh buffer per batch (the consumer may keep or modify it); otherwise they come
   * through node:dgram as with onMessage. `recvBatch` says which; IOTUPD_RECVMMSG=0 turns the
   * native path off. Pass undefined to go back to the iterator queue.
   */
  onDatagrams(cb: ((data: Uint8Array) => void) | undefined): void {
    this.#stopBatch();
    this.#onDatagram = cb;
    this.#onMessage = undefined;
    if (!cb || this.#closed) return;
    if (!this.#startBatch(RX_SLOT)) this.#onMessage = (d) => cb(d.data);
  }

  /** Whether onDatagrams reads by recvmmsg(), and if not, why. */
  get recvBatch(): { enabled: boolean; reason: string } {
    return { enabled: this.#rx !== undefined, reason: this.#rx ? '' : this.#rxOff };
  }

  #startBatch(slot: number): boolean {
    const { addon, reason } = nativeFor('IOTUPD_RECVMMSG');
    const udp = dgramHandle(this.#sock);
    const fd = dgramFd(this.#sock);
    if (!addon || !udp?.recvStart || !udp.recvStop || fd === undefined) {
      this.#rxOff = addon ? 'no file descriptor on the node:dgram handle' : reason;
      return false;
    }
    const restart = udp.recvStart.bind(udp);
    const lengths = new Int32Array(RX_BATCH);
    // libuv's UDP handle stops reading; the addon polls the same descriptor until #stopBatch.
    udp.recvStop.call(udp);
    try {
      const handle = addon.recvStart(fd, slot, RX_BATCH, lengths, this.#onBatch);
      this.#rx = { handle, addon, lengths, slot, restart };
      this.#rxOff = '';
      return true;
    } catch (err) {
      restart();
      this.#rxOff = `recvStart failed: ${(err as Error).message}`;
      return false;
    }
  }

  #stopBatch(): void {
    const rx = this.#rx;
    if (!rx) return;
    this.#rx = undefined;
    this.#rxOff = 'onDatagrams not in use';
    rx.addon.recvStop(rx.handle);
    if (!this.#closed) rx.restart();
  }

  readonly #onBatch = (buffer: ArrayBuffer, count: number): void => {
    const rx = this.#rx;
    const cb = this.#onDatagram;
    if (!rx || !cb) return;
    const lengths = rx.lengths;
    let at = 0;
    let truncated = false;
    for (let i = 0; i < count; i++) {
      const len = lengths[i] as number;
      if (len < 0) {
        this.stats.truncated++;
        truncated = true;
        continue;
      }
      this.stats.received++;
      this.stats.bytesReceived += len;
      const data = new Uint8Array(buffer, at, len);
      at += len;
      cb(data);
      if (this.#rx !== rx) return; // cb closed the socket or changed the receive path
    }
    if (truncated && rx.slot < RX_MAX_SLOT) {
      // Datagrams longer than the slot: lost once, then read with room for any datagram.
      this.#stopBatch();
      if (!this.#startBatch(RX_MAX_SLOT)) this.#onMessage = (d) => cb(d.data);
    }
  };

  /** Received datagrams until close() (or `signal` aborts: the iterator then ends). One consumer at a time. */
  messages(signal?: AbortSignal): AsyncIterableIterator<Datagram> {
    let ended = false;
    let pending: Waiter | undefined;
    const finish = (): IteratorResult<Datagram> => {
      ended = true;
      signal?.removeEventListener('abort', onAbort);
      if (pending) {
        const w = pending;
        pending = undefined;
        this.#waiters = this.#waiters.filter((x) => x !== w);
        w.settle({ value: undefined, done: true });
      }
      return { value: undefined, done: true };
    };
    const onAbort = (): void => void finish();
    signal?.addEventListener('abort', onAbort, { once: true });
    const it: AsyncIterableIterator<Datagram> = {
      next: (): Promise<IteratorResult<Datagram>> => {
        if (ended || signal?.aborted) return Promise.resolve(finish());
        const d = this.#shift();
        if (d) return Promise.resolve({ value: d, done: false });
        if (this.#error) {
          finish();
          return Promise.reject(this.#error);
        }
        if (this.#closed) return Promise.resolve(finish());
        return new Promise((resolve, reject) => {
          const w: Waiter = {
            settle: (r) => {
              pending = undefined;
              if (r.done) finish();
              resolve(r);
            },
            fail: (e) => {
              pending = undefined;
              finish();
              reject(e);
            },
          };
          pending = w;
          this.#waiters.push(w);
        });
      },
      return: (): Promise<IteratorResult<Datagram>> => Promise.resolve(finish()),
      [Symbol.asyncIterator]() {
        return it;
      },
    };
    return it;
  }

  [Symbol.asyncIterator](): AsyncIterableIterator<Datagram> {
    return this.messages();
  }

  /** Close the socket (memberships end with it). Idempotent; ends iterators; resolves when closed. */
  close(): Promise<void> {
    if (this.#closePromise) return this.#closePromise;
    this.#closed = true;
    this.#stopBatch(); // before node:dgram closes the descriptor the addon polls
    if (this.#signal && this.#onAbort) this.#signal.removeEventListener('abort', this.#onAbort);
    this.#closePromise = new Promise<void>((resolve) => {
      try {
        this.#sock.close(() => resolve());
      } catch {
        resolve(); // already closed by the runtime
      }
    });
    this.#memberships.clear();
    this.#queue = [];
    this.#qHead = 0;
    this.#wakeAll();
    const dw = this.#drainWaiters;
    this.#drainWaiters = [];
    for (const r of dw) r();
    return this.#closePromise;
  }

  #deliver(msg: Buffer, rinfo: RemoteInfo): void {
    this.stats.received++;
    this.stats.bytesReceived += msg.length;
    const d: Datagram = { data: msg, from: rinfo.address, port: rinfo.port };
    const cb = this.#onMessage;
    if (cb) {
      cb(d);
      return;
    }
    const w = this.#waiters.shift();
    if (w) {
      w.settle({ value: d, done: false });
      return;
    }
    if (this.#queue.length - this.#qHead >= this.#queueLimit) {
      this.stats.queueDrops++;
      return;
    }
    this.#queue.push(d);
  }

  #shift(): Datagram | undefined {
    if (this.#qHead >= this.#queue.length) return undefined;
    const d = this.#queue[this.#qHead++];
    // compact now and then so the array does not grow without bound
    if (this.#qHead > 1024 && this.#qHead * 2 > this.#queue.length) {
      this.#queue = this.#queue.slice(this.#qHead);
      this.#qHead = 0;
    }
    return d;
  }

  #fail(err: Error): void {
    this.#error = new SocketError(`socket on ${this.interface.name}: ${err.message}`, 'ERR_SOCKET', { cause: err });
    const ws = this.#waiters;
    this.#waiters = [];
    for (const w of ws) w.fail(this.#error);
    void this.close();
  }

  #wakeAll(): void {
    const ws = this.#waiters;
    this.#waiters = [];
    for (const w of ws) w.settle({ value: undefined, done: true });
  }

  #checkOpen(): void {
    if (this.#closed) throw new SocketError('socket is closed', 'ERR_SOCKET_CLOSED');
  }
}

function literalLookup(address: string, _family: unknown, cb: (err: Error | null, address: string, family: number) => void): void {
  cb(null, address, 6);
}

function errnoName(negErrno: number): string {
  try {
    return getSystemErrorName(negErrno);
  } catch {
    return `errno ${-negErrno}`;
  }
}

function membershipKey(group: string, source?: string): string {
  return source === undefined ? group : `${source}->${group}`;
}

function checkBufferSize(name: string, n: number): void {
  if (!Number.isInteger(n) || n < 1024 || n > 1 << 30) {
    throw new UsageError(`${name} must be an integer from 1024 to ${1 << 30} bytes, got ${String(n)}`, 'ERR_BAD_BUFFER_SIZE');
  }
}

