import { McastSocket, type Datagram } from '../net/index.js';
import { IotupdError, UsageError } from '../errors.js';
import { decodeDatagram, LibrecastMessageDecodeError, type LibrecastMessage, type MessageFault } from '../wire/librecast-message.js';
import type { Channel } from './channel.js';
import type { Context } from './context.js';

export interface SocketOptions {
  /** Interface name (validated by src/net; an unknown name is an InterfaceError, never a fallback). */
  interface: string;
  /** Multicast hop limit for what this socket sends (default 255, as Librecast). */
  hopLimit?: number;
  /** Loop our own multicast back to this host (default false, as Librecast). */
  loopback?: boolean;
  /** SO_RCVBUF requested for every joined channel (default src/net's 8 MiB). */
  recvBufferSize?: number;
  /** Datagrams held for a slow consumer before new ones are dropped (counted). Default 4096. */
  queueLimit?: number;
  /** Aborting closes the socket. */
  signal?: AbortSignal;
}

export interface JoinOptions {
  /** Source address for a source-specific join (RFC 4607). Required for SSM channels. */
  source?: string;
}

/** One datagram received on a joined channel. */
export interface ReceivedDatagram {
  channel: Channel;
  data: Uint8Array;
  /** Sender's address and UDP port. */
  from: string;
  port: number;
}

/** One decoded Librecast message (lc_msg_recv) received on a joined channel. */
export interface ReceivedMessage extends LibrecastMessage {
  channel: Channel;
  from: string;
  port: number;
  /** Datagram size (lc_message_t.bytes). */
  bytes: number;
}

export interface SocketStats {
  /** Datagrams received on joined channels. */
  received: number;
  /** Datagrams dropped because the queue was full. */
  queueDrops: number;
  /** Datagrams that were not Librecast messages, by fault (messages() only). */
  decodeDrops: Record<MessageFault, number>;
  /** Datagrams sent (raw and messages). */
  sent: number;
}

interface Membership {
  channel: Channel;
  source: string | undefined;
  sock: McastSocket;
}

type Waiter = () => void;

const DEFAULT_QUEUE_LIMIT = 4096;

/**
 * lc_socket_t bound to one interface (lc_socket_bind with a validated name instead of an index).
 *
 * Librecast binds one socket to [::]:4242 and turns IPV6_MULTICAST_ALL off so it only sees the
 * groups it joined, then tells them apart by IPV6_PKTINFO. Node can do neither, so every joined
 * channel gets its own src/net McastSocket bound to [group]:port: the kernel then delivers to it
 * only that group's datagrams and each datagram is known to belong to its channel. Sending goes
 * through one more McastSocket bound to an ephemeral port, carrying the hop limit and loopback
 * settings (IPV6_MULTICAST_HOPS / _LOOP are sender options).
 */
export class Socket {
  readonly context: Context;
  readonly interface: string;
  readonly hopLimit: number | undefined;
  readonly loopback: boolean;
  readonly stats: SocketStats = {
    received: 0,
    queueDrops: 0,
    decodeDrops: { short: 0, length: 0, opcode: 0, trailing: 0 },
    sent: 0,
  };
  readonly #sender: McastSocket;
  readonly #options: SocketOptions;
  readonly #members = new Map<string, Membership>();
  readonly #queueLimit: number;
  #queue: ReceivedDatagram[] = [];
  #qHead = 0;
  #waiters: Waiter[] = [];
  #closed = false;
  #closing: Promise<void> | undefined;
  #onAbort: (() => void) | undefined;

  private constructor(context: Context, sender: McastSocket, options: SocketOptions) {
    this.context = context;
    this.#sender = sender;
    this.#options = options;
    this.interface = sender.interface.name;
    this.hopLimit = options.hopLimit;
    this.loopback = options.loopback ?? false;
    this.#queueLimit = options.queueLimit ?? DEFAULT_QUEUE_LIMIT;
  }

  /** @internal use Context.socket() */
  static async open(context: Context, options: SocketOptions): Promise<Socket> {
    if (options.signal?.aborted) throw new IotupdError('ERR_ABORTED', 'aborted before the socket was opened');
    const limit = options.queueLimit ?? DEFAULT_QUEUE_LIMIT;
    if (!Number.isInteger(limit) || limit < 1 || limit > 1 << 20) {
      throw new UsageError(`queueLimit must be an integer from 1 to ${1 << 20}`, 'ERR_BAD_QUEUE_LIMIT');
    }
    const sender = await McastSocket.open({
      interface: options.interface,
      port: 0,
      ...(options.hopLimit !== undefined && { hopLimit: options.hopLimit }),
      loopback: options.loopback ?? false,
      recvBufferSize: 64 * 1024, // receives nothing: bound to an ephemeral port, joins nothing
    });
    const s = new Socket(context, sender, options);
    if (options.signal) {
      const signal = options.signal;
      s.#onAbort = () => void s.close();
      if (signal.aborted) {
        await s.close();
        throw new IotupdError('ERR_ABORTED', 'aborted while opening the socket');
      }
      signal.addEventListener('abort', s.#onAbort, { once: true });
    }
    return s;
  }

  get closed(): boolean {
    return this.#closed;
  }

  /**
   * SO_RCVBUF the kernel granted to the joined channels' sockets (getsockopt; Linux reports
   * twice the usable size and caps the request at net.core.rmem_max). Undefined before a join.
   */
  get recvBufferSize(): number | undefined {
    const first = this.#members.values().next();
    return first.done ? undefined : first.value.sock.recvBufferSize;
  }

  /** Channels joined, in join order. */
  get channels(): Channel[] {
    return [...this.#members.values()].map((m) => m.channel);
  }

  /**
   * lc_channel_bind + lc_channel_join: join `channel`'s group on this socket's interface and
   * deliver its datagrams to messages()/datagrams(). A channel not yet bound to a socket is
   * bound to this one for sending (the usual Librecast bind-then-join sequence); one already
   * bound keeps its socket (rebind explicitly with channel.bind). Joining twice is a no-op.
   */
  async join(channel: Channel, options: JoinOptions = {}): Promise<void> {
    this.#checkOpen();
    if (channel.context !== this.context) throw new UsageError('channel and socket belong to different contexts', 'ERR_LC_CONTEXT');
    if (channel.ssm && options.source === undefined) {
      throw new UsageError(`channel ${channel.group} is source-specific: join needs { source }`, 'ERR_LC_SSM_SOURCE');
    }
    const key = memberKey(channel);
    if (this.#members.has(key)) return;
    const sock = await McastSocket.open({
      interface: this.interface,
      port: channel.port,
      bindAddress: channel.group,
      ...(this.#options.recvBufferSize !== undefined && { recvBufferSize: this.#options.recvBufferSize }),
    });
    try {
      this.#checkOpen();
      sock.join(channel.group, options.source);
    } catch (err) {
      await sock.close();
      throw err;
    }
    sock.onMessage((d: Datagram) => this.#deliver(channel, d));
    this.#members.set(key, { channel, source: options.source, sock });
    if (channel.socket === undefined || channel.socket.closed) channel.bind(this);
  }

  /** lc_channel_part: leave the group; queued datagrams of it stay readable. */
  async part(channel: Channel): Promise<void> {
    const m = this.#members.get(memberKey(channel));
    if (!m) return;
    this.#members.delete(memberKey(channel));
    await m.sock.close();
  }

  /** @internal Channel.send / sendMsg */
  async sendTo(channel: Channel, bytes: Uint8Array): Promise<void> {
    this.#checkOpen();
    await this.#sender.send(bytes, channel.group, channel.port);
    this.stats.sent++;
  }

  /**
   * Raw datagrams of all joined channels (lc_socket_recv / lc_channel_recv). Ends when the
   * socket closes or `signal` aborts. One consumer at a time (messages() shares the queue).
   */
  async *datagrams(signal?: AbortSignal): AsyncGenerator<ReceivedDatagram, void, undefined> {
    for (;;) {
      const d = await this.#next(signal);
      if (d === undefined) return;
      yield d;
    }
  }

  /**
   * Decoded Librecast messages of all joined channels (lc_msg_recv). Datagrams that do not
   * decode are dropped and counted in stats.decodeDrops, never thrown. Each message advances
   * its channel's Lamport clock as Librecast's listener does.
   */
  async *messages(signal?: AbortSignal): AsyncGenerator<ReceivedMessage, void, undefined> {
    for (;;) {
      const d = await this.#next(signal);
      if (d === undefined) return;
      let msg: LibrecastMessage;
      try {
        msg = decodeDatagram(d.data);
      } catch (err) {
        if (err instanceof LibrecastMessageDecodeError) {
          this.stats.decodeDrops[err.fault]++;
          continue;
        }
        throw err;
      }
      d.channel.clock.observe(msg.seq);
      yield { ...msg, channel: d.channel, from: d.from, port: d.port, bytes: d.data.length };
    }
  }

  /** Close every underlying socket; iterators end. Idempotent; resolves when all are closed. */
  close(): Promise<void> {
    if (this.#closing) return this.#closing;
    this.#closed = true;
    if (this.#onAbort) this.#options.signal?.removeEventListener('abort', this.#onAbort);
    const socks = [this.#sender, ...[...this.#members.values()].map((m) => m.sock)];
    this.#members.clear();
    this.#queue = [];
    this.#qHead = 0;
    this.#wake();
    this.#closing = Promise.all(socks.map((s) => s.close())).then(() => {
      this.context.forget(this);
    });
    return this.#closing;
  }

  #deliver(channel: Channel, d: Datagram): void {
    this.stats.received++;
    if (this.#queue.length - this.#qHead >= this.#queueLimit) {
      this.stats.queueDrops++;
      return;
    }
    this.#queue.push({ channel, data: d.data, from: d.from, port: d.port });
    this.#wake();
  }

  #wake(): void {
    const ws = this.#waiters;
    this.#waiters = [];
    for (const w of ws) w();
  }

  async #next(signal?: AbortSignal): Promise<ReceivedDatagram | undefined> {
    for (;;) {
      if (signal?.aborted) return undefined;
      if (this.#qHead < this.#queue.length) {
        const d = this.#queue[this.#qHead++];
        if (this.#qHead === this.#queue.length) {
          this.#queue = [];
          this.#qHead = 0;
        } else if (this.#qHead > 1024 && this.#qHead * 2 > this.#queue.length) {
          this.#queue = this.#queue.slice(this.#qHead); // compact now and then
          this.#qHead = 0;
        }
        if (d) return d;
      }
      if (this.#closed) return undefined;
      await new Promise<void>((resolve) => {
        const onAbort = (): void => resolve();
        signal?.addEventListener('abort', onAbort, { once: true });
        this.#waiters.push(() => {
          signal?.removeEventListener('abort', onAbort);
          resolve();
        });
      });
    }
  }

  #checkOpen(): void {
    if (this.#closed) throw new IotupdError('ERR_SOCKET_CLOSED', 'socket is closed');
  }
}

function memberKey(channel: Channel): string {
  return `[${channel.group}]:${channel.port}`;
}
