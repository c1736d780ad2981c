import { test, type TestContext } from 'node:test';
import { Lab, type LabOptions } from './lab.js';
import { labSupport } from './support.js';

export interface LabTestOptions extends LabOptions {
  /** node:test timeout in ms (default 60 s). */
  timeout?: number;
}

/**
 * A node:test test that runs `fn` in a fresh lab and always destroys it. When the lab is
 * unavailable here the test is skipped with the reason (never silently passed).
 */
export function labTest(name: string, opts: LabTestOptions, fn: (lab: Lab, t: TestContext) => Promise<void>): void {
  const support = labSupport();
  if (!support.ok) {
    test(name, { skip: `network lab unavailable: ${support.reason}` }, () => {});
    return;
  }
  test(name, { timeout: opts.timeout ?? 60_000 }, async (t) => {
    const lab = await Lab.create({ hosts: opts.hosts });
    try {
      await fn(lab, t);
    } finally {
      await lab.destroy();
    }
  });
}
