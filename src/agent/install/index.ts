// Install methods (docs/agent.md "Install methods"). Each step is idempotent: the agent re-runs
// the step it was in after a crash, so running it twice must leave what running it once leaves.
import type { FaultInjector } from '../fault.js';
import { AbInstall, type AbSettings } from './ab.js';
import { FileInstall, type FileSettings } from './file.js';
import { HookInstall, type HookSettings } from './hook.js';

export type { AbSettings, FileSettings, HookSettings };
export type InstallSettings = FileSettings | AbSettings | HookSettings;

export interface InstallContext {
  /** The staged image, verified against the signed manifest. */
  image: string;
  /** IOTUPD_* variables describing the release (hooks get them in their environment). */
  env: Record<string, string>;
  /** Saved by prepare() in the persisted state. */
  methodData: Record<string, string>;
  faults: FaultInjector;
  signal?: AbortSignal;
}

export interface InstallMethod {
  readonly name: InstallSettings['method'];
  /** Before install: what the method must remember across restarts (persisted with the release). */
  prepare(): Record<string, string>;
  /** Write the new version where it is not yet in use. */
  install(ctx: InstallContext): Promise<void>;
  /**
   * The written copy that the switch will activate, re-hashed against the manifest just before the
   * switch; undefined when the method keeps no copy of its own (the staged image is re-hashed).
   */
  writtenPath(ctx: InstallContext): string | undefined;
  /** Make the new version the one in use, atomically. */
  switch(ctx: InstallContext): Promise<void>;
  /** Make the previous version the one in use again. */
  rollback(ctx: InstallContext): Promise<void>;
  /** The new version is good: drop what rollback needed. */
  commit(ctx: InstallContext): Promise<void>;
  /** Undo an install that will not be switched to (before the switch). */
  abort(ctx: InstallContext): Promise<void>;
  /**
   * After commit: make the version that was in use before the committed one active again (a
   * signed HALT with rollback, docs/agent.md "Halts"). `methodData` is the committed release's.
   * False when the method no longer has the previous version.
   */
  revert(methodData: Record<string, string>, faults: FaultInjector): Promise<boolean>;
}

export function createInstallMethod(s: InstallSettings): InstallMethod {
  switch (s.method) {
    case 'file':
      return new FileInstall(s);
    case 'ab':
      return new AbInstall(s);
    case 'hook':
      return new HookInstall(s);
  }
}
