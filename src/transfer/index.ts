// iotupd/transfer: fountain-coded (RaptorQ) multicast delivery. See docs/protocol.md.
export { FountainSender, type SenderOptions, type SenderStep, type SenderStats } from './sender.js';
export type { Sealer } from '../wire/fountain.js';
export { Pacer, DEFAULT_RATE_BPS, type PacerOptions } from './pacer.js';
export { SendPipeline, type DatagramProducer, type ProducerStep, type SendStage, type SendPipelineOptions } from './pipeline.js';
export {
  FountainReceiver,
  FileStore,
  MemoryStore,
  type ReceiverOptions,
  type ReceiverStats,
  type ReceiverProgress,
  type ObjectInfo,
  type PushResult,
  type ReceiverStore,
  type StoreLayout,
  type StoreResume,
  type StoredBlock,
  type BlockSpan,
  type FileStoreOptions,
  type MemoryStoreOptions,
} from './receiver/index.js';
export { Spool, RecordKind } from './spool.js';
export { BytesSource, FileSource, type ObjectSource } from './source.js';
export { createHasher, hashBytes, hashFile, deriveObjectId } from './object.js';
export { sendFile, receiveFile, createFileSender, type FileSenderOptions, type SendFileOptions, type SendFileResult, type ReceiveFileOptions, type ReceiveResult } from './driver.js';
export { WorkerDecoder, syncDecoder, runDecodeJob, type DecodeExecutor, type DecodeJob, type DecodeResult } from './decoding.js';
