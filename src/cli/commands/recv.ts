import type { Command } from '../command.js';
import { formatOf } from '../command.js';
import { fountainRecv, RECV_USAGE } from '../fountain.js';
import { carouselRecv, CAROUSEL_RECV_USAGE } from '../carousel.js';

export const recvCommand: Command = {
  usage: `${RECV_USAGE}\n\n--format iotupd:\n${CAROUSEL_RECV_USAGE}`,
  run: (argv, signal) => (formatOf(argv) === 'fountain' ? fountainRecv(argv, signal) : carouselRecv(argv, signal)),
};
