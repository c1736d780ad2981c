// Single-copy install by atomic rename. Names next to the target (same directory, so rename(2)
// stays on one file system):
//   TARGET.iotupd-new   the new version, written and fsynced before the switch
//   TARGET.iotupd-prev  a hard link to the version replaced, kept after commit for a halt's
//                       rollback (docs/agent.md "Halts") until the next install begins
// switch = link(TARGET, prev) then rename(new, TARGET): at every instant TARGET is a complete old
// or new version.
import type { FaultInjector } from '../fault.js';
import type { InstallContext, InstallMethod } from './index.js';
import { copyFileAtomic, exists, linkDurable, removeDurable, renameDurable } from '../fsops.js';

export interface FileSettings {
  method: 'file';
  /** The file replaced by the image. */
  target: string;
}

export class FileInstall implements InstallMethod {
  readonly name = 'file';
  constructor(readonly settings: FileSettings) {}

  private get newPath(): string {
    return `${this.settings.target}.iotupd-new`;
  }

  private get prevPath(): string {
    return `${this.settings.target}.iotupd-prev`;
  }

  prepare(): Record<string, string> {
    return { hadTarget: exists(this.settings.target) ? 'yes' : 'no' };
  }

  async install(ctx: InstallContext): Promise<void> {
    // The previous-but-one version kept for a halt goes now: the switch must keep the current one.
    removeDurable(this.prevPath, ctx.faults, 'file:drop-previous');
    copyFileAtomic(ctx.image, this.newPath, ctx.faults, 'file:write-new');
  }

  writtenPath(): string {
    // Once the rename happened (a crash inside the switch) the new version is the target itself.
    return exists(this.newPath) ? this.newPath : this.settings.target;
  }

  async switch(ctx: InstallContext): Promise<void> {
    if (!exists(this.newPath)) return; // renamed already
    if (ctx.methodData.hadTarget === 'yes' && !exists(this.prevPath)) linkDurable(this.settings.target, this.prevPath, ctx.faults, 'file:keep-previous');
    renameDurable(this.newPath, this.settings.target, ctx.faults, 'file:rename');
  }

  async rollback(ctx: InstallContext): Promise<void> {
    removeDurable(this.newPath, ctx.faults, 'file:drop-new');
    if (exists(this.prevPath)) renameDurable(this.prevPath, this.settings.target, ctx.faults, 'file:restore-previous');
    else if (ctx.methodData.hadTarget === 'no') removeDurable(this.settings.target, ctx.faults, 'file:remove-target');
    // else: restored already, or the switch never began (the target is still the old version).
  }

  async commit(): Promise<void> {
    // The previous version stays (TARGET.iotupd-prev) until the next install: a signed HALT with
    // rollback can still restore it.
  }

  async revert(methodData: Record<string, string>, faults: FaultInjector): Promise<boolean> {
    if (exists(this.prevPath)) {
      renameDurable(this.prevPath, this.settings.target, faults, 'file:revert');
      return true;
    }
    if (methodData.hadTarget === 'no' && exists(this.settings.target)) {
      // Nothing was installed before: the halted version is removed.
      removeDurable(this.settings.target, faults, 'file:revert');
      return true;
    }
    return false;
  }

  async abort(ctx: InstallContext): Promise<void> {
    removeDurable(this.newPath, ctx.faults, 'file:drop-new');
  }
}
