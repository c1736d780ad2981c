// The original iotupd carousel: I/O-free sender/receiver cores, and drivers over src/net.
export { ChunkBitmap } from './bitmap.js';
export { TokenBucket } from './pacing.js';
export { SeqLossEstimator, type LossStats } from './loss.js';
export { CarouselSender, WIRE_BYTES_PER_FRAME, type CarouselSenderOptions, type ChunkReader } from './sender.js';
export {
  CarouselReceiver,
  DROP_REASONS,
  type CarouselReceiverOptions,
  type DropReason as CarouselDropReason,
  type FileIdentity,
  type PushResult as CarouselPushResult,
  type ReceiverStats as CarouselReceiverStats,
} from './receiver.js';
export { decodeState, encodeState, type ResumeState } from './state.js';
export { sendCarousel, DEFAULT_RATE_MBIT, type CarouselSendOptions, type CarouselSendProgress, type CarouselSendResult } from './send.js';
export {
  receiveCarousel,
  STATE_SUFFIX,
  type CarouselReceiveOptions,
  type CarouselReceiveProgress,
  type CarouselReceiveResult,
  type CarouselReceiveEvent,
  type CarouselReceivePhase,
} from './recv.js';
