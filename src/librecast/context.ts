import { Channel as ChannelSpec, type ChannelName, type ChannelOptions } from '../channel/index.js';
import { IotupdError } from '../errors.js';
import { Channel } from './channel.js';
import { Socket, type SocketOptions } from './socket.js';

/**
 * lc_ctx_t: owns sockets and channels; close() (lc_ctx_free) closes every socket it opened.
 *
 *   const ctx = new Context();
 *   const sock = await ctx.socket({ interface: 'eth0' });
 *   const chan = ctx.channel('example.com');
 *   await sock.join(chan);
 *   await chan.sendMsg(new TextEncoder().encode('hello'));
 *   for await (const msg of sock.messages(signal)) ...
 *   await ctx.close();
 */
export class Context {
  readonly #sockets = new Set<Socket>();
  #closed = false;

  get closed(): boolean {
    return this.#closed;
  }

  /** Open sockets of this context. */
  get sockets(): Socket[] {
    return [...this.#sockets];
  }

  /** lc_socket_new + lc_socket_bind: a socket on one validated interface. */
  async socket(options: SocketOptions): Promise<Socket> {
    this.#checkOpen();
    const s = await Socket.open(this, options);
    if (this.#closed) {
      await s.close();
      this.#checkOpen();
    }
    this.#sockets.add(s);
    return s;
  }

  /** lc_channel_new (string) / lc_channel_nnew (bytes), plus iotupd's scheme, scope, SSM and port options. */
  channel(name: ChannelName, options: ChannelOptions = {}): Channel {
    this.#checkOpen();
    return new Channel(this, new ChannelSpec(name, options));
  }

  /** lc_channel_init_grp: a channel on a given group address. */
  channelFromGroup(group: string, port?: number): Channel {
    this.#checkOpen();
    return new Channel(this, ChannelSpec.fromGroup(group, port));
  }

  /** @internal a channel of this context for a derived group (sideband, sidehash). */
  adopt(spec: ChannelSpec): Channel {
    this.#checkOpen();
    return new Channel(this, spec);
  }

  /** @internal called by Socket.close */
  forget(socket: Socket): void {
    this.#sockets.delete(socket);
  }

  /** lc_ctx_free: close every socket; nothing of this context keeps running afterwards. */
  async close(): Promise<void> {
    this.#closed = true;
    await Promise.all([...this.#sockets].map((s) => s.close()));
  }

  #checkOpen(): void {
    if (this.#closed) throw new IotupdError('ERR_CONTEXT_CLOSED', 'librecast context is closed');
  }
}
