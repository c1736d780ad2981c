// The fleet web dashboard (docs/fleet-status.md "Dashboard"): server.ts serves the page and its
// event stream, view.ts computes what the page shows, assets.ts is the page itself.
export { Dashboard, DEFAULT_DASHBOARD_PORT, checkDashboardOptions, SECURITY_HEADERS, generateToken, isLoopback, type DashboardOptions, type DashboardAddress, type DashboardEvents } from './server.js';
export { snapshot, rollout, deviceJson, historyJson, releaseJson, type DashboardSnapshot, type RolloutRow, type DeviceJson, type HistoryJson, type ReleaseJson } from './view.js';
