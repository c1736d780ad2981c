// The public API of iotupd, listed by hand: what a program needs to send and receive updates,
// publish releases and run a device agent. Building blocks have subpath exports of their own
// (iotupd/fec, iotupd/wire, iotupd/crypto, iotupd/transfer, iotupd/channel, iotupd/net,
// iotupd/librecast, iotupd/announce, iotupd/publish, iotupd/agent, iotupd/fleet). docs/api.md
// describes it.

// Sending and receiving a file or a signed release on a channel.
export { send, Sender, type SendOptions, type SendStart, type SenderEvents } from './session/sender.js';
export { receive, Receiver, type ReceiveOptions, type ReceiveOutcome, type ReceiveProgress, type ReceiverEvents } from './session/receiver.js';
export { receiveSecurity, type ReceiveSecurity, type ReceiveSecurityStage, type SecuritySummary } from './session/receive-security.js';
export { planSendSecurity, type SendSecurity, type SendSecurityPlan } from './session/send-security.js';
export type { SendFileResult as SendResult, ReceiveResult } from './transfer/driver.js';
export type { ObjectInfo, ReceiverStats, SenderStats } from './transfer/index.js';
// Opt-in, process-wide memory bounds for a process whose main job is receiving.
export { tuneReceiverMemory, DEFAULT_MAX_SEMI_SPACE_MIB, type ReceiverMemoryTuning, type ReceiverMemoryOptions } from './transfer/heap.js';

// Channels: names hashed to IPv6 multicast groups (Librecast-compatible).
export { resolveGroup, channelGroup, Channel, SCHEMES, SCOPES, type ChannelTarget, type ChannelOptions, type Scheme, type Scope } from './channel/index.js';

// Keys, trust and signed manifests.
export {
  generateSigningKey,
  generateGroupKey,
  loadSigningKey,
  loadPublicKey,
  loadGroupKey,
  saveKeyPair,
  saveGroupKey,
  publicInfo,
  issueDelegation,
  TrustStore,
  inspectManifest,
  verifyManifest,
  DeviceState,
  type SigningKey,
  type PublicKeyInfo,
  type Delegation,
  type DelegationOptions,
  type Manifest,
  type ManifestFields,
  type VerifyPolicy,
} from './crypto/index.js';

// Releases: the publisher service and the device agent.
export { Publisher, fountainServer, type PublisherEvent, type PublisherOptions, type FountainServeOptions, type Release } from './publish/index.js';
export { Agent, loadAgentConfig, parseAgentConfig, BundleSource, MulticastSource, agentSnapshot, reportStatus, type AgentOptions, type AgentEvents, type AgentConfig, type ReleaseSource, type Offer, type MulticastSourceOptions } from './agent/index.js';
export { createRelease, type CreateReleaseOptions, type CreatedRelease } from './publish/create.js';

// Fleet status: devices' signed reports, the collector and its dashboard.
export { FleetReporter, Collector, Dashboard, DeviceIdentity, Registry, statusChannel, type DeviceSnapshot, type RateBudget, type CollectorOptions, type DeviceView, type FleetSummary } from './fleet/index.js';

// The original iotupd carousel (the 1246-byte frame format).
export {
  sendCarousel,
  receiveCarousel,
  type CarouselSendOptions,
  type CarouselSendProgress,
  type CarouselSendResult,
  type CarouselReceiveOptions,
  type CarouselReceiveProgress,
  type CarouselReceiveResult,
  type CarouselReceiveEvent,
} from './carousel/index.js';

// Errors: one class per failure family, each with a stable code.
export {
  ErrorCode,
  IotupdError,
  UsageError,
  InterfaceError,
  DecodeError,
  FecError,
  SecurityError,
  StorageError,
  LabError,
  AbortError,
  TimeoutError,
  abortError,
} from './errors.js';
