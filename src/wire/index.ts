// Packet formats. One module per format; each exports encode/decode/encodingLength.
export * as iotupdFrame from './iotupd-frame.js';
export * as fountain from './fountain.js';
export * as librecastMessage from './librecast-message.js';
export * as status from './status.js';
