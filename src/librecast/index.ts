// A Librecast-compatible API (Librecast 0.5.1 lc_ctx/lc_socket/lc_channel/lc_msg) over src/net.
// Mapping table: docs/channels.md.
export { Context } from './context.js';
export { Socket, type SocketOptions, type JoinOptions, type ReceivedDatagram, type ReceivedMessage, type SocketStats } from './socket.js';
export { Channel, type SendMsgOptions } from './channel.js';
export { LamportClock, realtimeNs } from './clock.js';
export { Opcode, type LibrecastMessage } from '../wire/librecast-message.js';
