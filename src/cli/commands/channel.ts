import type { Command } from '../command.js';
import { parse } from '../command.js';
import { UsageError } from '../../errors.js';
import { Channel, SCHEMES, SCOPES, type Scheme, type Scope } from '../../channel/index.js';

const usage = `usage: iotupd channel NAME [--scheme librecast|sha3] [--scope link|site|org|global] [--ssm]
                      [--port N] [--sideband N] [--json]

Prints the IPv6 multicast group of channel NAME.
  --scheme    librecast (default): BLAKE3 as Librecast 0.5.1 lc_channel_new; sha3: SHA3-512
  --scope     multicast scope (default global: ff1e::/16; link ff12, site ff15, org ff18)
  --ssm       source-specific group in ff3x::/96 (RFC 4607) for SSM networks
  --port      UDP port (default 4242), shown with --json
  --sideband  lc_channel_sideband: low 64 bits := N (unsigned 64-bit, little-endian)
  --json      one JSON object: name, scheme, scope, ssm, group, port`;

function oneOf<T extends string>(option: string, value: string | undefined, allowed: readonly T[], fallback: T): T {
  if (value === undefined) return fallback;
  if ((allowed as readonly string[]).includes(value)) return value as T;
  throw new UsageError(`--${option} must be one of ${allowed.join(', ')}, got '${value}'`);
}

function parseBand(raw: string): bigint {
  if (!/^(0x[0-9a-fA-F]{1,16}|[0-9]{1,20})$/.test(raw)) throw new UsageError(`--sideband must be an unsigned 64-bit integer, got '${raw}'`);
  const band = BigInt(raw);
  if (band > 0xffff_ffff_ffff_ffffn) throw new UsageError(`--sideband must be an unsigned 64-bit integer, got '${raw}'`);
  return band;
}

function parsePort(raw: string | undefined): number {
  if (raw === undefined) return 4242;
  if (!/^[0-9]{1,5}$/.test(raw) || Number(raw) < 1 || Number(raw) > 65535) {
    throw new UsageError(`--port must be an integer from 1 to 65535, got '${raw}'`);
  }
  return Number(raw);
}

export const channelCommand: Command = {
  usage,
  async run(argv: string[]): Promise<number> {
    const { values, positionals } = parse(argv, {
      scheme: { type: 'string' },
      scope: { type: 'string' },
      ssm: { type: 'boolean' },
      port: { type: 'string' },
      sideband: { type: 'string' },
      json: { type: 'boolean' },
    });
    if (positionals.length !== 1) {
      throw new UsageError(positionals.length === 0 ? 'channel: missing NAME (try --help)' : `channel: one NAME expected, got ${positionals.length}`);
    }
    const name = positionals[0] ?? '';
    const scheme = oneOf<Scheme>('scheme', values.scheme, SCHEMES, 'librecast');
    const scope = oneOf<Scope>('scope', values.scope, Object.keys(SCOPES) as Scope[], 'global');
    let channel = new Channel(name, { scheme, scope, ssm: values.ssm === true, port: parsePort(values.port) });
    if (values.sideband !== undefined) channel = channel.sideband(parseBand(values.sideband));
    if (values.json === true) {
      const j = channel.toJSON();
      console.log(JSON.stringify({ ...j, ...(values.sideband !== undefined && { sideband: parseBand(values.sideband).toString() }) }));
    } else {
      console.log(channel.group);
    }
    return 0;
  },
};
