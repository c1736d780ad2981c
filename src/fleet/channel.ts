// The status channel of a product (docs/fleet-status.md "Channel"): a Librecast channel name,
// hashed to its multicast group like every other iotupd channel (docs/channels.md).
import { UsageError } from '../errors.js';

/** `iotupd/<product>/status`. */
export function statusChannel(product: string): string {
  if (product.length === 0 || /[\s/]/.test(product)) throw new UsageError(`product name '${product}' must be non-empty, without spaces or '/'`);
  return `iotupd/${product}/status`;
}
