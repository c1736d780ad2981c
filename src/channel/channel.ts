import { UsageError } from '../errors.js';
import { formatIpv6, isMulticast, parseIpv6, type Ipv6Bytes } from './address.js';
import {
  DEFAULT_PORT,
  hashGroup,
  nameBytes,
  placeGroup,
  scopeNibble,
  sidebandGroup,
  sidehashGroup,
  type ChannelName,
  type GroupOptions,
  type Scheme,
  type Scope,
} from './naming.js';

export interface ChannelOptions extends GroupOptions {
  /** UDP port, default 4242 (LC_DEFAULT_PORT). */
  port?: number;
}

export function checkPort(port: unknown): number {
  if (typeof port !== 'number' || !Number.isInteger(port) || port < 1 || port > 65535) {
    throw new UsageError(`port must be an integer from 1 to 65535, got '${String(port)}'`);
  }
  return port;
}

interface Placement {
  scope?: Scope;
  ssm?: boolean;
}

/** Internal constructor path for derived channels (sidebands, fromGroup). Not exported. */
const DERIVE: unique symbol = Symbol('Channel.derive');

interface State {
  name: string | undefined;
  scheme: Scheme | undefined;
  port: number;
  root: Ipv6Bytes;
  placement: Placement | undefined;
}

function scopeOf(address: Ipv6Bytes): Scope | undefined {
  const nibble = (address[1] ?? 0) & 0x0f;
  return (['link', 'site', 'org', 'global'] as const).find((s) => scopeNibble(s) === nibble);
}

/**
 * A named multicast channel: group address and port, no socket. Immutable.
 *
 * `root` is the ff1e any-source group that Librecast itself would use; `address` is where the
 * channel lives after the scope / SSM options were applied. Sidebands and sidehashes are derived
 * from the root exactly as lc_channel_sideband / lc_channel_sidehash do, then placed with the
 * same options, so a sideband of an SSM channel is again an SSM channel.
 */
export class Channel {
  /** The name it was made from (undefined for byte names and raw groups). */
  readonly name: string | undefined;
  readonly scheme: Scheme | undefined;
  readonly port: number;
  readonly scope: Scope | undefined;
  readonly ssm: boolean;
  /** Group address, RFC 5952 text. */
  readonly group: string;
  readonly #address: Ipv6Bytes;
  readonly #root: Ipv6Bytes;
  readonly #placement: Placement | undefined;

  /** lc_channel_new(ctx, name) (lc_channel_nnew for bytes), plus iotupd's scope and SSM options. */
  constructor(name: ChannelName, options?: ChannelOptions);
  constructor(name: typeof DERIVE, state: State);
  constructor(name: ChannelName | typeof DERIVE, options: ChannelOptions | State = {}) {
    let state: State;
    if (name === DERIVE) {
      state = options as State;
    } else {
      const o = options as ChannelOptions;
      const scheme = o.scheme ?? 'librecast';
      state = {
        name: typeof name === 'string' ? name : undefined,
        scheme,
        port: checkPort(o.port ?? DEFAULT_PORT),
        root: hashGroup(nameBytes(name), scheme),
        placement: { scope: o.scope ?? 'global', ssm: o.ssm === true },
      };
    }
    this.name = state.name;
    this.scheme = state.scheme;
    this.port = state.port;
    this.#root = state.root;
    this.#placement = state.placement;
    this.#address = state.placement ? placeGroup(state.root, state.placement) : new Uint8Array(state.root);
    this.scope = state.placement?.scope ?? scopeOf(this.#address);
    this.ssm = state.placement ? state.placement.ssm === true : ((this.#address[1] ?? 0) & 0xf0) === 0x30;
    this.group = formatIpv6(this.#address);
  }

  /** lc_channel_init_grp: a channel on a given multicast group (no name, no placement). */
  static fromGroup(group: string | Ipv6Bytes, port: number = DEFAULT_PORT): Channel {
    const bytes = typeof group === 'string' ? parseIpv6(group) : new Uint8Array(group);
    if (!isMulticast(bytes)) {
      throw new UsageError(`not a multicast group: '${typeof group === 'string' ? group : String(group.length) + ' bytes'}'`);
    }
    return new Channel(DERIVE, { name: undefined, scheme: undefined, port: checkPort(port), root: bytes, placement: undefined });
  }

  #derive(root: Ipv6Bytes, port = this.port): Channel {
    return new Channel(DERIVE, { name: this.name, scheme: this.scheme, port, root, placement: this.#placement });
  }

  /** Group address as 16 bytes (a copy). */
  get address(): Ipv6Bytes {
    return new Uint8Array(this.#address);
  }

  /** lc_channel_sideband: low 64 bits of the (root) group replaced by `band`, little-endian. */
  sideband(band: bigint): Channel {
    return this.#derive(sidebandGroup(this.#root, band));
  }

  /** lc_channel_sidehash: bytes 2..15 of the (root) group := BLAKE3-keyed(key, group)[0..13]. */
  sidehash(key: Uint8Array): Channel {
    return this.#derive(sidehashGroup(this.#root, key));
  }

  /** Same group on another port. */
  withPort(port: number): Channel {
    return this.#derive(this.#root, checkPort(port));
  }

  /** Same group and port. */
  equals(other: Channel): boolean {
    return this.group === other.group && this.port === other.port;
  }

  toJSON(): { name: string | undefined; scheme: Scheme | undefined; scope: Scope | undefined; ssm: boolean; group: string; port: number } {
    return { name: this.name, scheme: this.scheme, scope: this.scope, ssm: this.ssm, group: this.group, port: this.port };
  }

  toString(): string {
    return `[${this.group}]:${this.port}`;
  }
}
