// Packet formats. One module per format; each exports encode/decode/encodingLength (house style),
// so each is published under its own name: `wire.fountain.decodePacket`, `wire.beacon.decode`.
import * as iotupdFrame from './iotupd-frame.js';
import * as fountain from './fountain.js';
import * as librecastMessage from './librecast-message.js';
import * as beacon from './beacon.js';
import * as status from './status.js';

export { iotupdFrame, fountain, librecastMessage, beacon, status };
