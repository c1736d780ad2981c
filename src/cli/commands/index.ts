import type { Command } from '../command.js';
import { keygenCommand } from './keygen.js';
import { manifestCommand } from './manifest.js';
import { channelCommand } from './channel.js';
import { sendCommand } from './send.js';
import { recvCommand } from './recv.js';
import { demoCommand } from './demo.js';

// One line per sub-command; each lives in its own file in this folder.
export const commands: Command[] = [
  sendCommand,
  recvCommand,
  demoCommand,
  keygenCommand,
  manifestCommand,
  channelCommand,
];
