import type { ChildProcess } from 'node:child_process';
import { JsonLines as Lines } from '../../src/lab/index.js';

export type Line = Record<string, unknown> & { event?: string };

/**
 * A child's stdout JSON lines (src/lab JsonLines; non-JSON lines kept as { event: 'unparsed', text }):
 * `waitFor(event)` resolves with the first line of that event, `exited` with the exit code
 * (128 for a signal) and every line; a child that exits first rejects with its stderr.
 */
export class JsonLines {
  readonly #out: Lines;
  readonly exited: Promise<{ code: number; lines: Line[]; stderr: string }>;

  constructor(child: ChildProcess) {
    this.#out = new Lines(child, { unparsed: 'record' });
    this.exited = this.#out.exited.then(({ code, signal, lines, stderr }) => ({ code: code ?? (signal ? 128 : 1), lines, stderr }));
  }

  get lines(): Line[] {
    return this.#out.lines;
  }

  get stderr(): string {
    return this.#out.stderr;
  }

  waitFor(event: string): Promise<Line> {
    return this.#out.waitFor((l) => l.event === event);
  }
}
