import type { ChildProcess } from 'node:child_process';

export type Line = Record<string, unknown> & { event?: string };

/**
 * Collects a child's stdout JSON lines; `waitFor(event)` resolves with the first line of that
 * event, `exited` with the exit code and every line. A child that exits before the awaited
 * event rejects with its stderr (so a test fails with the reason, not a hang).
 */
export class JsonLines {
  readonly lines: Line[] = [];
  stderr = '';
  readonly exited: Promise<{ code: number; lines: Line[]; stderr: string }>;
  #listeners: Array<() => void> = [];
  #done = false;

  constructor(child: ChildProcess) {
    let buf = '';
    child.stdout?.setEncoding('utf8').on('data', (d: string) => {
      buf += d;
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const text = buf.slice(0, nl).trim();
        buf = buf.slice(nl + 1);
        if (text === '') continue;
        try {
          this.lines.push(JSON.parse(text) as Line);
        } catch {
          this.lines.push({ event: 'unparsed', text });
        }
        this.#notify();
      }
    });
    child.stderr?.setEncoding('utf8').on('data', (d: string) => (this.stderr += d));
    this.exited = new Promise((resolve) => {
      child.once('close', (code, signal) => {
        this.#done = true;
        this.#notify();
        resolve({ code: code ?? (signal ? 128 : 1), lines: this.lines, stderr: this.stderr });
      });
    });
  }

  #notify(): void {
    const ls = this.#listeners;
    this.#listeners = [];
    for (const l of ls) l();
  }

  waitFor(event: string): Promise<Line> {
    return new Promise((resolve, reject) => {
      const check = (): void => {
        const hit = this.lines.find((l) => l.event === event);
        if (hit) return resolve(hit);
        if (this.#done) return reject(new Error(`process ended before '${event}': ${this.stderr.trim() || JSON.stringify(this.lines)}`));
        this.#listeners.push(check);
      };
      check();
    });
  }
}
