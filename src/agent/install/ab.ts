// A/B install: two slots (files, or directories filled from a tar image) and a pointer file naming
// the active one ("a" or "b"). The inactive slot is written; the switch replaces the pointer
// atomically; rollback points it back. The slot in use is never written, so a crash at any step
// leaves the pointer on a complete slot. A bootloader-managed A/B (U-Boot, GRUB) uses the hook
// method instead (docs/agent.md has a U-Boot example).
import { mkdirSync, readFileSync } from 'node:fs';
import type { FaultInjector } from '../fault.js';
import type { InstallContext, InstallMethod } from './index.js';
import { runCommand, describeResult } from '../command.js';
import { AgentError } from '../errors.js';
import { copyFileAtomic, removeDurable, renameDurable, writeFileAtomic } from '../fsops.js';
import { storageError } from '../../fsutil/index.js';

export interface AbSettings {
  method: 'ab';
  /** Slot a, slot b. */
  slots: [string, string];
  /** File holding "a" or "b": the active slot. Missing means a. */
  pointer: string;
  /** 'file': the image is copied into the slot; 'dir': the image is a tar archive unpacked into it. */
  slotType: 'file' | 'dir';
}

export type SlotName = 'a' | 'b';

export function activeSlot(pointer: string): SlotName {
  let text: string;
  try {
    text = readFileSync(pointer, 'utf8').trim();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 'a';
    throw storageError(err, 'read', pointer);
  }
  if (text !== 'a' && text !== 'b') throw new AgentError(`${pointer} must hold 'a' or 'b', not '${text.slice(0, 20)}'`, 'ERR_INSTALL');
  return text;
}

export class AbInstall implements InstallMethod {
  readonly name = 'ab';
  constructor(readonly settings: AbSettings) {}

  slotPath(name: SlotName): string {
    return this.settings.slots[name === 'a' ? 0 : 1];
  }

  prepare(): Record<string, string> {
    const from = activeSlot(this.settings.pointer);
    return { from, to: from === 'a' ? 'b' : 'a' };
  }

  private to(ctx: InstallContext): SlotName {
    return ctx.methodData.to === 'b' ? 'b' : 'a';
  }

  async install(ctx: InstallContext): Promise<void> {
    const slot = this.slotPath(this.to(ctx));
    if (this.settings.slotType === 'file') {
      copyFileAtomic(ctx.image, slot, ctx.faults, 'ab:write-slot');
      return;
    }
    // Directory slot: unpack beside it, then replace it. The slot is inactive, so the moment
    // between removing the old tree and the rename harms nothing; a re-run starts over.
    const tmp = `${slot}.iotupd-tmp`;
    removeDurable(tmp, ctx.faults, 'ab:clear-tmp');
    ctx.faults.step('ab:unpack');
    try {
      mkdirSync(tmp, { recursive: true });
    } catch (err) {
      throw storageError(err, 'create', tmp);
    }
    const r = await runCommand(`tar -xf "$IOTUPD_IMAGE" -C "$IOTUPD_SLOT_TMP" && sync -f "$IOTUPD_SLOT_TMP"`, {
      env: { IOTUPD_IMAGE: ctx.image, IOTUPD_SLOT_TMP: tmp },
      timeoutMs: 600_000,
      ...(ctx.signal ? { signal: ctx.signal } : {}),
    });
    if (r.code !== 0) throw new AgentError(`cannot unpack the image into ${tmp}: tar ${describeResult(r, 600_000)}`, 'ERR_INSTALL');
    removeDurable(slot, ctx.faults, 'ab:clear-slot');
    renameDurable(tmp, slot, ctx.faults, 'ab:write-slot');
  }

  writtenPath(ctx: InstallContext): string | undefined {
    return this.settings.slotType === 'file' ? this.slotPath(this.to(ctx)) : undefined;
  }

  async switch(ctx: InstallContext): Promise<void> {
    writeFileAtomic(this.settings.pointer, `${this.to(ctx)}\n`, ctx.faults, 'ab:pointer');
  }

  async rollback(ctx: InstallContext): Promise<void> {
    writeFileAtomic(this.settings.pointer, `${ctx.methodData.from === 'b' ? 'b' : 'a'}\n`, ctx.faults, 'ab:pointer-back');
  }

  async commit(): Promise<void> {
    // The old slot stays as it is: it becomes the target of the next install.
  }

  async abort(): Promise<void> {
    // The inactive slot may hold a partial image; nothing points to it.
  }

  async revert(methodData: Record<string, string>, faults: FaultInjector): Promise<boolean> {
    // The agent reverts only while no later install has begun (it may have written the old slot).
    const from: SlotName = methodData.from === 'b' ? 'b' : 'a';
    if (activeSlot(this.settings.pointer) === from) return true;
    writeFileAtomic(this.settings.pointer, `${from}\n`, faults, 'ab:revert');
    return true;
  }
}
