import { blockPartition, decodeOti, type Oti } from '../../fec/index.js';
import { HASH_LENGTH, type DescriptionBody, type FountainPacket } from '../../wire/fountain.js';
import { bytesEqual, createHasher, deriveObjectId, type Hasher } from '../object.js';
import type { StoreLayout } from './store.js';
import type { ObjectInfo, ReceiverOptions } from './types.js';

/** The RaptorQ limit on an object's size (RFC 6330 4.4.1.2: transfer length below 2^40). */
export const DEFAULT_MAX_SIZE = 2 ** 40;

export type DescriptionPacket = FountainPacket & { kind: 'description' };

/** An object a description defines, checked: what the receiver needs to receive it. */
export interface Selected {
  info: ObjectInfo;
  layout: StoreLayout;
  hasher: Hasher;
}

/** Whether the caller's selection (`objectId`, `name`) admits the object `p` describes. */
export function isWanted(opts: Pick<ReceiverOptions, 'objectId' | 'name'>, p: DescriptionPacket): boolean {
  if (opts.objectId && !bytesEqual(opts.objectId, p.objectId)) return false;
  return opts.name === undefined || opts.name === p.description.name;
}

/** Whether a description with the selected object's id describes it the same way (else a conflict). */
export function describesSame(info: ObjectInfo, d: DescriptionBody): boolean {
  return d.size === info.size && d.hashAlgorithm === info.hashAlgorithm && bytesEqual(d.hash, info.hash) && bytesEqual(d.oti, info.otiBytes);
}

/**
 * Checks a description (docs/protocol.md "DESCRIPTION"): an OTI RaptorQ can partition, a known
 * hash algorithm, a size that matches the OTI and the bound, and an object id derived from
 * them (so that a description cannot claim another object's id). Undefined when any fails.
 */
export function selectObject(p: DescriptionPacket, maxObjectSize = DEFAULT_MAX_SIZE): Selected | undefined {
  const d = p.description;
  let oti: Oti;
  let hasher: Hasher;
  let blocks: StoreLayout['blocks'];
  try {
    oti = decodeOti(d.oti);
    hasher = createHasher(d.hashAlgorithm);
    if (d.hash.length !== HASH_LENGTH || oti.transferLength !== d.size || d.size > maxObjectSize) return undefined;
    if (!bytesEqual(deriveObjectId(d.oti, d.hashAlgorithm, d.hash), p.objectId)) return undefined;
    blocks = blockPartition(oti);
  } catch {
    return undefined;
  }
  const objectId = new Uint8Array(p.objectId);
  const info: ObjectInfo = { objectId, name: d.name, size: d.size, oti, otiBytes: new Uint8Array(d.oti), hashAlgorithm: d.hashAlgorithm, hash: new Uint8Array(d.hash) };
  return { info, layout: { objectId, size: d.size, symbolSize: oti.symbolSize, blocks }, hasher };
}
