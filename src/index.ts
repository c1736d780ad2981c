// The curated public API of iotupd. Subpath exports (iotupd/fec, iotupd/wire, ...) carry the rest.
export * from './errors.js';
export * from './channel/index.js';
export * from './net/index.js';
export * as fec from './fec/index.js';
export { sendFile, receiveFile, FountainSender, FountainReceiver, SendPipeline, type Sealer, type SendFileOptions, type ReceiveFileOptions } from './transfer/index.js';
export { planSendSecurity, type SendSecurity, type SendSecurityPlan } from './session/send-security.js';
export * as crypto from './crypto/index.js';
export * as librecast from './librecast/index.js';
export * as carousel from './carousel/index.js';
export * as announce from './announce/index.js';
export * as publish from './publish/index.js';
