#!/usr/bin/env node
import { AbortError, ErrorCode, IotupdError, UsageError } from '../errors.js';
import { commands } from './commands/index.js';

/** Exit status by error code (a UsageError exits 2); every other IotupdError exits 1. */
const exitCodes: Record<string, number> = { [ErrorCode.TIMEOUT]: 3, [ErrorCode.ABORTED]: 130 };

function help(): string {
  const width = Math.max(...commands.map((c) => c.name.length), 4);
  const lines = commands.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`);
  return `usage: iotupd <command> [options]\n\ncommands:\n${lines.join('\n')}\n\nRun 'iotupd <command> --help' for a command's options.`;
}

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    console.log(help());
    return name === undefined ? 2 : 0;
  }
  const entry = commands.find((c) => c.name === name);
  if (!entry) {
    console.error(`iotupd: unknown command '${name}' (try 'iotupd --help')`);
    return 2;
  }
  const cmd = await entry.load();
  if (rest.includes('--help') || rest.includes('-h')) {
    console.log(cmd.usage);
    return 0;
  }
  const ac = new AbortController();
  let interrupts = 0;
  const onSignal = (sig: NodeJS.Signals) => {
    interrupts += 1;
    if (interrupts > 1) process.exit(130);
    ac.abort(new AbortError(`interrupted by ${sig}`));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    return await cmd.run(rest, ac.signal);
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    if (err instanceof IotupdError) {
      console.error(`iotupd: ${err.message}`);
      process.exitCode = err instanceof UsageError ? 2 : (exitCodes[err.code] ?? 1);
    } else {
      console.error('iotupd: internal error:', err);
      process.exitCode = 70;
    }
  },
);
