/**
 * iotupd/fleet: device status over multicast (docs/fleet-status.md).
 *
 * Device side
 *   StatusReporter              I/O-free: changed(snapshot, now) / next(now) / wakeAt(now)
 *   FleetReporter.open(opts)    driver: update(snapshot), setBudget(b), close(); McastSocket
 *   DeviceIdentity.open(dir)    the device's status key (0600) and persisted counter
 *   heartbeatInterval(budget, bytes), quietAfter(budget)
 * Collector side
 *   new Collector(opts)         ingest(datagram, from?, now?), tick(now?), listen({ interface }),
 *                               devices(), device(id), history(id), versionCounts(), summary(),
 *                               releases() (the publisher's STATE beacons, with opts.trust),
 *                               events(signal) and typed EventEmitter events, close()
 *   Registry                    enrolled device keys (text file)
 *   FleetStore                  the SQLite database
 *   new Dashboard(opts)         web page fed by server-sent events: listen({ signal }), close();
 *                               dashboardSnapshot(), rollout(): what the page shows
 */
export { statusChannel } from './channel.js';
export { DeviceIdentity, KEY_PREFIX, COUNTER_FILE, type DeviceIdentityOptions } from './identity.js';
export {
  StatusReporter,
  heartbeatInterval,
  quietAfter,
  checkBudget,
  truncateUtf8,
  DEFAULT_BUDGET,
  type DeviceSnapshot,
  type RateBudget,
  type DueReport,
  type StatusReporterOptions,
} from './reporter.js';
export { FleetReporter, type FleetReporterOptions, type FleetReporterEvents } from './reporter-driver.js';
export { Registry, checkDeviceId, registryStamp } from './registry.js';
export { FleetStore, SCHEMA, SCHEMA_VERSION, type DeviceRecord, type HistoryEntry, type ReleaseRecord } from './store.js';
export {
  Collector,
  DROP_REASONS,
  type DropReason,
  type Health,
  type DeviceView,
  type ReleaseView,
  type ReleaseHeard,
  type IngestResult,
  type CollectorEvent,
  type CollectorEvents,
  type CollectorOptions,
  type ListenOptions,
  type FleetSummary,
} from './collector.js';
export { AGENT_STATES, REPORT_REASONS, MAX_STATUS_BYTES, type AgentState, type ReportReason, type StatusBody, type StatusReport } from '../wire/status.js';
export {
  Dashboard,
  DEFAULT_DASHBOARD_PORT,
  checkDashboardOptions,
  generateToken,
  isLoopback,
  snapshot as dashboardSnapshot,
  rollout,
  type DashboardOptions,
  type DashboardAddress,
  type DashboardEvents,
  type DashboardSnapshot,
  type RolloutRow,
  type ReleaseJson,
} from './dashboard/index.js';
