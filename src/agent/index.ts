// iotupd/agent: the device side of an update (docs/agent.md).
export { Agent, type AgentOptions, type AgentEvents, type AgentResult, type AgentStatus, type HaltEvent, type HaltNotice, type ReleaseInfo, type SkipEvent, type WaitingEvent } from './agent.js';
export { MulticastSource, type MulticastSourceEvents, type MulticastSourceOptions, type ReleaseRef, type DownloadProgress } from './multicast.js';
export { loadAgentConfig, parseAgentConfig, type AgentConfig, type HealthCheckSettings, type StatusSettings } from './config.js';
export { AgentError } from './errors.js';
export { agentSnapshot, reportStatus, packageVersion, type AgentSnapshotInput, type ReportStatusOptions, type StatusTarget, type ProgressSource } from './report.js';
export { faultsFromSpec, noFaults, type FaultInjector } from './fault.js';
export { runHealthCheck, type HealthResult } from './health.js';
export { createInstallMethod, type InstallMethod, type InstallSettings, type InstallContext, type FileSettings, type AbSettings, type HookSettings } from './install/index.js';
export { activeSlot } from './install/ab.js';
export { decideRollout, type DeviceProfile, type RolloutDecision, type SkipReason } from './rollout.js';
export { BundleSource, type Offer, type ReleaseSource } from './source.js';
export { AgentStateStore, readAgentState, PHASES, STATE_FILE, type AgentStateData, type Outcome, type Phase, type ReleaseRecord, type Reverted } from './state.js';
