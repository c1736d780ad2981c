// How the publisher serves a release's data: given a release, start sending it on the release's
// data channel and return the running transfer. A publisher started without `serve` announces
// only (for setups where another process sends the data).
import type { Channel } from '../channel/channel.js';
import { AbortError, UsageError } from '../errors.js';
import type { MacSuite } from '../crypto/packet-auth.js';
import type { SigningKey } from '../crypto/keys.js';
import { parseOti } from '../crypto/blocks.js';
import { Sender } from '../session/sender.js';
import type { Release } from './release.js';

/** A transfer the publisher started and will stop when the release is withdrawn or halted. */
export interface RunningTransfer {
  /** Stop sending and release every resource; idempotent. */
  stop(): Promise<void>;
  /** Settles when the transfer ends on its own (error or completion); optional. */
  done?: Promise<unknown>;
  /** Stop and resume sending, keeping the transfer's place (needed for pausing releases nobody needs). */
  pause?(): void;
  resume?(): void;
}

export interface ServeTarget {
  /** The release's data channel (src/announce/channels.ts releaseChannel), as announced. */
  channel: Channel;
  /** Network interface the publisher sends on. */
  interface: string;
  /** Aborted when the publisher stops or the release goes away. */
  signal: AbortSignal;
}

export type ServeRelease = (release: Release, target: ServeTarget) => Promise<RunningTransfer>;

export interface FountainServeOptions {
  /** Bits per second for each release's data (IPv6 and UDP headers counted). Default 20 Mbit/s. */
  rateBps?: number;
  /** The group key of encrypted or tagged releases (their manifest names it). */
  groupKey?: Uint8Array;
  /** The tag of releases that are tagged, not encrypted (as devices expect; default poly1305). */
  mac?: MacSuite;
  /** Signs the digest batches of releases whose manifest asks for signed symbol digests. */
  signingKey?: SigningKey;
}

/**
 * Serve each release's data as a fountain transfer (src/session/sender.ts) on its data channel,
 * carrying the release's own signed manifest, until the release is withdrawn or the publisher
 * stops. What the manifest asks for (encryption, signed digests) needs its key here.
 */
export function fountainServer(opts: FountainServeOptions = {}): ServeRelease {
  return async (release, target) => {
    const f = release.fields;
    if (f.encryption && !opts.groupKey) throw new UsageError(`${release.source}: the release is encrypted: the publisher needs its group key`);
    if (f.symbolDigests && !opts.signingKey) throw new UsageError(`${release.source}: the release asks for signed symbol digests: the publisher needs a signing key`);
    const ac = new AbortController();
    const onAbort = () => ac.abort(target.signal.reason);
    target.signal.addEventListener('abort', onAbort, { once: true });
    if (target.signal.aborted) onAbort();
    // Send with the partition the manifest was made with (its OTI): the object id, and with it
    // every block commitment, depend on the symbol size and the number of source blocks.
    const oti = parseOti(f.oti);
    const totalSymbols = Math.ceil(oti.F / oti.T);
    const tx = new Sender({
      file: release.imagePath,
      symbolSize: oti.T,
      maxBlockSymbols: Math.ceil(totalSymbols / oti.Z),
      group: target.channel.group,
      port: target.channel.port,
      interface: target.interface,
      ...(opts.rateBps !== undefined ? { rateBps: opts.rateBps } : {}),
      security: {
        manifest: release.manifestBytes,
        ...(opts.groupKey ? { groupKey: opts.groupKey } : {}),
        ...(f.encryption ? { encrypt: true, cipher: f.encryption.cipher } : opts.groupKey ? { mac: opts.mac ?? 'poly1305' } : {}),
        ...(f.symbolDigests && opts.signingKey ? { digests: true, signingKey: opts.signingKey } : {}),
      },
      signal: ac.signal,
    });
    // Started: the file is hashed against the manifest's object before the first packet.
    await new Promise<void>((resolve, reject) => {
      tx.once('start', () => resolve());
      tx.done.then(() => resolve(), reject);
    });
    const stopped = tx.done.then(
      () => undefined,
      (err: unknown) => {
        if (err instanceof AbortError) return undefined;
        throw err;
      },
    );
    return {
      async stop() {
        ac.abort();
        target.signal.removeEventListener('abort', onAbort);
        await stopped.catch(() => undefined);
      },
      done: stopped,
      pause: () => tx.pause(),
      resume: () => tx.resume(),
    };
  };
}
