// Fault injection for the crash-safety test (test/agent/crash.test.ts), after MCUboot's simulator:
// every persisted step of an update (each state write, each write of a target, slot or pointer,
// each hook run) calls `step(name)` just before it touches the disk. A test first counts the steps
// of a clean update, then re-runs it killed at each one in turn.
//
// The library never reads the environment: the CLI builds an injector from IOTUPD_AGENT_FAULT and
// passes it in (AgentOptions.faults).
import { appendFileSync } from 'node:fs';
import { UsageError } from '../errors.js';

export interface FaultInjector {
  step(name: string): void;
}

export const noFaults: FaultInjector = { step() {} };

/**
 * `count:FILE` appends each step's name to FILE (one per line); `kill:N` makes the process SIGKILL
 * itself at its N-th step (1-based), before that step's write, as a power cut would.
 */
export function faultsFromSpec(spec: string): FaultInjector {
  const count = /^count:(.+)$/.exec(spec);
  if (count) {
    const file = count[1] as string;
    return { step: (name) => appendFileSync(file, `${name}\n`) };
  }
  const kill = /^kill:(\d{1,6})$/.exec(spec);
  if (kill) {
    const at = Number(kill[1]);
    let n = 0;
    return {
      step() {
        n += 1;
        if (n === at) process.kill(process.pid, 'SIGKILL');
      },
    };
  }
  throw new UsageError(`IOTUPD_AGENT_FAULT must be count:FILE or kill:N, got '${spec}'`);
}
