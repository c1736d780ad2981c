// The curated public API of iotupd. Subpath exports (iotupd/fec, iotupd/wire, ...) carry the rest.
export * from './errors.js';
export * from './channel/index.js';
export * from './net/index.js';
