import { Channel as ChannelSpec } from '../channel/index.js';
import { UsageError } from '../errors.js';
import { encode, Opcode, type LibrecastMessage } from '../wire/librecast-message.js';
import { LamportClock, randomU64, realtimeNs } from './clock.js';
import type { Context } from './context.js';
import type { Socket } from './socket.js';

export interface SendMsgOptions {
  /** Header timestamp in ns; default now (lc_msg_send uses msg->timestamp when non-zero). */
  timestamp?: bigint;
  /** Nonce; default random. */
  rnd?: bigint;
}

/**
 * lc_channel_t: a group address and port (a src/channel Channel, `spec`) owned by a Context,
 * with Librecast's per-channel Lamport clock and an optional socket to send through
 * (lc_channel_bind). Create with `ctx.channel(name)`.
 */
export class Channel {
  readonly context: Context;
  readonly spec: ChannelSpec;
  /** Per-channel Lamport clock: the `seq` of messages sent and moved by messages received. */
  readonly clock = new LamportClock();
  #socket: Socket | undefined;

  /** @internal use Context.channel / Context.channelFromGroup */
  constructor(context: Context, spec: ChannelSpec) {
    this.context = context;
    this.spec = spec;
  }

  get name(): string | undefined {
    return this.spec.name;
  }
  /** Group address, RFC 5952 text. */
  get group(): string {
    return this.spec.group;
  }
  get port(): number {
    return this.spec.port;
  }
  get ssm(): boolean {
    return this.spec.ssm;
  }
  /** The socket this channel sends through (lc_channel_socket), if bound. */
  get socket(): Socket | undefined {
    return this.#socket;
  }

  /** lc_channel_sideband: a new channel of the same context. */
  sideband(band: bigint): Channel {
    return this.context.adopt(this.spec.sideband(band));
  }

  /** lc_channel_sidehash (32-byte key, see src/channel/naming.ts). */
  sidehash(key: Uint8Array): Channel {
    return this.context.adopt(this.spec.sidehash(key));
  }

  /** lc_channel_bind: send through `socket` from now on. */
  bind(socket: Socket): this {
    if (socket.context !== this.context) throw new UsageError('channel and socket belong to different contexts', 'ERR_LC_CONTEXT');
    this.#socket = socket;
    return this;
  }

  /** lc_channel_unbind. */
  unbind(): this {
    this.#socket = undefined;
    return this;
  }

  #bound(): Socket {
    const s = this.#socket;
    if (!s) throw new UsageError(`channel ${this.spec.toString()} is not bound to a socket (bind or join first)`, 'ERR_LC_SOCKET_REQUIRED');
    return s;
  }

  /** lc_channel_send: raw bytes, no header, one datagram to [group]:port. */
  async send(bytes: Uint8Array): Promise<void> {
    await this.#bound().sendTo(this, bytes);
  }

  /**
   * lc_msg_send: the 33-byte header (timestamp ns, seq = next Lamport tick, random rnd, opcode,
   * length) then `payload`, one datagram. Resolves with the message as sent.
   */
  async sendMsg(payload: Uint8Array, opcode: Opcode = Opcode.DATA, options: SendMsgOptions = {}): Promise<LibrecastMessage> {
    const socket = this.#bound();
    const msg: LibrecastMessage = {
      timestamp: options.timestamp ?? realtimeNs(),
      seq: this.clock.tick(),
      rnd: options.rnd ?? randomU64(),
      opcode,
      payload,
    };
    await socket.sendTo(this, encode(msg));
    return msg;
  }

  toString(): string {
    return this.spec.toString();
  }
}
