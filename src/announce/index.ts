// Release announcements, shared by the publisher and the device agent: channel naming, signing
// beacons, and the device-side AnnounceFilter. Formats and rules: docs/publish.md.
export { announceChannel, announceChannelName, releaseChannel, releaseChannelName } from './channels.js';
export { signBeacon, type BeaconContent } from './sign.js';
export {
  AnnounceFilter,
  REFUSAL_REASONS,
  type AnnounceFilterOptions,
  type AnnounceFilterStats,
  type AnnounceResult,
  type Halt,
  type ReleaseStateNotice,
  type Offer,
  type RefusalReason,
} from './filter.js';
export { LruMap, TokenBucket } from './bounded.js';
export { listenForAnnouncements, type ListenOptions, type ListenResult } from './listen.js';
