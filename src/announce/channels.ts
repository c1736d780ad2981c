// Channel names of the update system (docs/publish.md, "Naming"). Names are Librecast channel
// names: every publisher and device hashes them to the same group with src/channel, so nothing
// but the product name has to be configured on a device.
//
//   announce channel of a product     iotupd:announce:<product>
//   data channel of a release         iotupd:release:<product>:<sequence>:<manifest id, 64 hex>
//
// <product> is percent-encoded (encodeURIComponent), so it never contains ':' and the names of
// different products, sequences or releases can never be equal. The manifest id in the data
// channel's name gives two releases that (wrongly) share a sequence different groups.
import { Channel, type ChannelOptions } from '../channel/channel.js';
import { toHex } from '../crypto/bytes.js';
import { UsageError } from '../errors.js';

export function announceChannelName(product: string): string {
  if (typeof product !== 'string' || product.length === 0) throw new UsageError('product name must not be empty');
  return `iotupd:announce:${encodeURIComponent(product)}`;
}

export function releaseChannelName(product: string, sequence: bigint, manifestId: Uint8Array): string {
  if (typeof product !== 'string' || product.length === 0) throw new UsageError('product name must not be empty');
  if (typeof sequence !== 'bigint' || sequence < 1n) throw new UsageError('sequence must be a positive bigint');
  if (manifestId.length !== 32) throw new UsageError('manifest id must be 32 bytes');
  return `iotupd:release:${encodeURIComponent(product)}:${sequence}:${toHex(manifestId)}`;
}

/** The announce channel (group and port) of a product; options as for any channel (scope, ssm, port). */
export function announceChannel(product: string, options?: ChannelOptions): Channel {
  return new Channel(announceChannelName(product), options);
}

/** The channel a release's data is sent on. */
export function releaseChannel(product: string, sequence: bigint, manifestId: Uint8Array, options?: ChannelOptions): Channel {
  return new Channel(releaseChannelName(product, sequence, manifestId), options);
}
