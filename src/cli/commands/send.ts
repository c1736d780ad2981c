import type { Command } from '../command.js';
import { formatOf } from '../command.js';
import { fountainSend, SEND_USAGE } from '../fountain.js';
import { carouselSend, CAROUSEL_SEND_USAGE } from '../carousel.js';

export const sendCommand: Command = {
  usage: `${SEND_USAGE}\n\n--format iotupd:\n${CAROUSEL_SEND_USAGE}`,
  run: (argv, signal) => (formatOf(argv) === 'fountain' ? fountainSend(argv, signal) : carouselSend(argv, signal)),
};
