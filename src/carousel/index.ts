// The original iotupd carousel: I/O-free sender/receiver cores, and drivers over src/net.
export { ChunkBitmap } from './bitmap.js';
export { TokenBucket } from './pacing.js';
export { SeqLossEstimator, type LossStats } from './loss.js';
export { CarouselSender, WIRE_BYTES_PER_FRAME, type CarouselSenderOptions, type ChunkReader } from './sender.js';
export {
  CarouselReceiver,
  DROP_REASONS,
  type CarouselReceiverOptions,
  type DropReason,
  type FileIdentity,
  type PushResult,
  type ReceiverStats,
} from './receiver.js';
export { decodeState, encodeState, type ResumeState } from './state.js';
export { sendFile, DEFAULT_RATE_MBIT, type SendFileOptions, type SendProgress, type SendResult } from './send.js';
export {
  receiveFile,
  STATE_SUFFIX,
  type ReceiveFileOptions,
  type ReceiveProgress,
  type ReceiveResult,
  type ReceiveEvent,
  type ReceivePhase,
} from './recv.js';
