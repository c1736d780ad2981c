// User commands for each step (like Mender update modules or RAUC handlers): anything the other
// methods do not cover, such as a bootloader-managed A/B (docs/agent.md has a U-Boot example),
// containers, or firmware behind a gateway. Each command runs through /bin/sh with the IOTUPD_*
// variables (docs/agent.md) and must be idempotent: after a crash the same step runs again.
import type { InstallContext, InstallMethod } from './index.js';
import { describeResult, runCommand } from '../command.js';
import { AgentError } from '../errors.js';

export interface HookSettings {
  method: 'hook';
  install: string;
  switch: string;
  rollback: string;
  commit?: string;
  /** Each command is killed (its whole process group) after this long. */
  timeoutSeconds: number;
}

export class HookInstall implements InstallMethod {
  readonly name = 'hook';
  constructor(readonly settings: HookSettings) {}

  private async run(step: 'install' | 'switch' | 'rollback' | 'commit', ctx: InstallContext): Promise<void> {
    const command = this.settings[step];
    if (command === undefined) return;
    ctx.faults.step(`hook:${step}`);
    const timeoutMs = this.settings.timeoutSeconds * 1000;
    const r = await runCommand(command, { env: { ...ctx.env, IOTUPD_STEP: step }, timeoutMs, ...(ctx.signal ? { signal: ctx.signal } : {}) });
    if (r.code !== 0) throw new AgentError(`${step} hook ${describeResult(r, timeoutMs)}`, 'ERR_HOOK');
  }

  prepare(): Record<string, string> {
    return {};
  }

  install(ctx: InstallContext): Promise<void> {
    return this.run('install', ctx);
  }

  writtenPath(): undefined {
    return undefined;
  }

  switch(ctx: InstallContext): Promise<void> {
    return this.run('switch', ctx);
  }

  rollback(ctx: InstallContext): Promise<void> {
    return this.run('rollback', ctx);
  }

  commit(ctx: InstallContext): Promise<void> {
    return this.run('commit', ctx);
  }

  async abort(): Promise<void> {
    // Nothing was switched; the install hook must tolerate a later re-run over what it left.
  }

  async revert(): Promise<boolean> {
    // The rollback hook is defined only between switch and commit: after a commit the agent does
    // not know what the system kept, so a halt's rollback is left to the hook's owner.
    return false;
  }
}
