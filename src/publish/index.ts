// The publisher service: releases on disk, the beacon scheduler, the Publisher class, and the
// data-serving integration point. Beacon format and device-side rules: src/announce, docs/publish.md.
export { Publisher, releaseFiles, type DemandOptions, type PublisherEvent, type PublisherOptions, type PublisherStats, type ReleaseSummary } from './publisher.js';
export { deviceNeed, releaseDemand, describeDemand, emptyDemand, PauseRule, type DemandDevice, type DeviceNeed, type PauseRuleOptions, type PositionCache } from './demand.js';
export { BeaconScheduler, type SchedulerOptions } from './scheduler.js';
export {
  checkImage,
  loadReleaseDir,
  loadReleaseFiles,
  loadReleasesConfig,
  loadReleasesDir,
  HALT_FILE,
  IMAGE_FILE,
  MANIFEST_FILE,
  type HaltMode,
  type LoadOptions,
  type LoadResult,
  type Release,
} from './release.js';
export { fountainServer, type FountainServeOptions, type RunningTransfer, type ServeRelease, type ServeTarget } from './serve.js';
