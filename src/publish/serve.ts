// The integration point between the publisher and the fountain transfer: given a release, start
// sending its data on the release's data channel and return the running transfer. The transfer
// API is being reworked; this function is where the publisher will call it. Until it is wired,
// it refuses with ERR_NOT_IMPLEMENTED (never a stand-in that pretends to send), and a publisher
// started without `serve` announces only (for setups where another process sends the data).
import type { Channel } from '../channel/channel.js';
import { IotupdError } from '../errors.js';
import type { Release } from './release.js';

/** A transfer the publisher started and will stop when the release is withdrawn or halted. */
export interface RunningTransfer {
  /** Stop sending and release every resource; idempotent. */
  stop(): Promise<void>;
  /** Settles when the transfer ends on its own (error or completion); optional. */
  done?: Promise<unknown>;
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

/** Serve a release's data as a fountain transfer on its data channel. Not wired yet: see above. */
export const serveReleaseData: ServeRelease = async (release) => {
  throw new IotupdError('ERR_NOT_IMPLEMENTED', `serving release data is not wired to the transfer yet (${release.source}); run with announce-only`);
};
