import type { Oti } from '../../fec/index.js';
import type { FountainPacket } from '../../wire/fountain.js';
import type { IotupdError } from '../../errors.js';
import type { DecodeExecutor } from '../decoding.js';
import type { ReceiverStore } from './store.js';

export interface ReceiverStats {
  /** Datagrams given to push(). */
  datagrams: number;
  /** Symbol packets of the selected object. */
  received: number;
  /** Symbols that went into completed blocks (source symbols written + symbols fed to a successful decode). */
  used: number;
  /** Symbols already held (same SBN and ESI). */
  duplicate: number;
  /** Symbols for blocks already complete. */
  late: number;
  /** Packets of other objects. */
  foreign: number;
  /** Datagrams that do not decode, or describe an impossible object, or carry an impossible symbol. */
  malformed: number;
  /** Descriptions with the selected object's id but a different OTI, size or hash. */
  conflicts: number;
  /** Packets rejected by the `accept` hook (e.g. authentication failures). */
  rejected: number;
  /** Packet types this layer does not interpret (e.g. MANIFEST for the security layer). */
  other: number;
  descriptions: number;
  /** Symbols that arrived before the description (buffered, up to a bound, then dropped). */
  early: number;
  decodeAttempts: number;
  decodeFailures: number;
  /** Stored records that failed their check (on resume or when read back). */
  corruptRecords: number;
  /** Blocks found complete in the store at start (not decoded again). */
  resumedBlocks: number;
  /** Whole-object hash mismatches after decoding (the transfer then starts over). */
  hashMismatches: number;
  /** Blocks that decoded but failed `checkBlock` (their symbols are collected again). */
  blocksRejected: number;
}

export function newStats(): ReceiverStats {
  return {
    datagrams: 0,
    received: 0,
    used: 0,
    duplicate: 0,
    late: 0,
    foreign: 0,
    malformed: 0,
    conflicts: 0,
    rejected: 0,
    other: 0,
    descriptions: 0,
    early: 0,
    decodeAttempts: 0,
    decodeFailures: 0,
    corruptRecords: 0,
    resumedBlocks: 0,
    hashMismatches: 0,
    blocksRejected: 0,
  };
}

export interface ReceiverOptions {
  /**
   * Where the object is assembled: a FileStore (the spool next to the output, resumable) or a
   * MemoryStore. A store that holds an object from an earlier run is resumed when that object
   * matches the selection, else discarded.
   */
  store: ReceiverStore;
  objectId?: Uint8Array;
  name?: string;
  /** Reject objects larger than this (default 2^40, the RaptorQ limit). */
  maxObjectSize?: number;
  /**
   * Hook for the security layer: called with the raw datagram and its decoded form before the
   * packet is used. Return false to drop it (counted as `rejected`).
   */
  accept?: (datagram: Uint8Array, packet: FountainPacket) => boolean;
  /** Buffer at most this many symbols that arrive before any description. */
  earlyBuffer?: number;
  /**
   * Per-block check before a block is written to its final place (the block's hash committed
   * by the signed manifest). False: the block's symbols are discarded and collected again.
   */
  checkBlock?: (sbn: number, block: Uint8Array) => boolean;
  /**
   * Where block decodes run (default: synchronously, inside push). The network driver passes an
   * InlineDecoder or a WorkerDecoder; completion is then signalled through onComplete (and
   * failures through onError).
   */
  decoder?: DecodeExecutor;
  onComplete?: () => void;
  onError?: (err: IotupdError) => void;
  /** The object to receive was chosen (from a description, or resumed from the store). */
  onObject?: (info: ObjectInfo) => void;
  /** Block `sbn` is complete in the store (whole from source symbols, decoded, or resumed). */
  onBlock?: (sbn: number) => void;
  /** Called after each block that needed the decoder (the driver uses it to return memory). */
  afterDecode?: () => void;
}

export interface ObjectInfo {
  objectId: Uint8Array;
  name: string;
  size: number;
  oti: Oti;
  otiBytes: Uint8Array;
  hashAlgorithm: number;
  hash: Uint8Array;
}

export interface ReceiverProgress {
  object?: ObjectInfo;
  blocks: number;
  blocksDone: number;
  /** Symbols needed in total (sum of K). */
  needed: number;
  /** Distinct useful symbols held (capped at K per block). */
  have: number;
  complete: boolean;
  /**
   * The caller's clock (push's `now`) when the object was selected (undefined when it was
   * resumed from the store) and when it completed.
   */
  selectedAt?: number;
  completedAt?: number;
}

export type PushResult = 'complete' | 'progress' | 'ignored';
