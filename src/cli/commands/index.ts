import type { Command } from '../command.js';
import { channelCommand } from './channel.js';

// One line per sub-command; each lives in its own file in this folder.
export const commands: Command[] = [
  channelCommand,
];
