// The fountain receiver (docs/protocol.md "Receiver"): an I/O-free core fed datagrams, and the
// stores it assembles the object in.
export { FountainReceiver } from './receiver.js';
export type { ReceiverOptions, ReceiverStats, ReceiverProgress, ObjectInfo, PushResult } from './types.js';
export type { ReceiverStore, StoreLayout, StoreResume, StoredBlock, BlockSpan } from './store.js';
export { FileStore, type FileStoreOptions } from './file-store.js';
export { MemoryStore, type MemoryStoreOptions } from './memory-store.js';
