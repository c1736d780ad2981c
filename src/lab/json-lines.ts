import type { ChildProcess } from 'node:child_process';

export type JsonLine = Record<string, unknown>;

export interface JsonLinesOptions {
  /** Called with each parsed line, after it is appended to `lines`. */
  onLine?(o: JsonLine): void;
  /** Called with each stderr chunk, after it is appended to `stderr`. */
  onStderr?(s: string): void;
  /**
   * Lines that are not a JSON object: 'skip' them (default), or 'record' them in `lines` as
   * { event: 'unparsed', text } (trimmed; blank lines are always skipped).
   */
  unparsed?: 'skip' | 'record';
  /** Names the process in error messages (e.g. the lab host). */
  name?: string;
}

export interface JsonLinesExit {
  code: number | null;
  signal: NodeJS.Signals | null;
  stderr: string;
  lines: JsonLine[];
}

interface Waiter {
  pred: (o: JsonLine) => boolean;
  resolve: (o: JsonLine) => void;
  reject: (e: Error) => void;
}

/**
 * Collects a child's stdout as JSON lines (one object per '\n'-terminated line; a final
 * unterminated line is ignored) and its stderr. `waitFor` resolves with the first line matching
 * a predicate and rejects with the stderr when the child exits first or the wait times out, so a
 * test fails with the reason rather than hanging.
 */
export class JsonLines {
  readonly lines: JsonLine[] = [];
  stderr = '';
  /** Resolves once the child closed (stdout fully read): every line has been seen. */
  readonly exited: Promise<JsonLinesExit>;
  #waiters = new Set<Waiter>();
  #exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  readonly #name: string;

  constructor(child: ChildProcess, opts: JsonLinesOptions = {}) {
    this.#name = opts.name ?? 'process';
    let buf = '';
    child.stdout?.setEncoding('utf8').on('data', (d: string) => {
      buf += d;
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const text = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        const o = parseObject(text);
        if (o === undefined) {
          const trimmed = text.trim();
          if (opts.unparsed !== 'record' || trimmed === '') continue;
          this.#push({ event: 'unparsed', text: trimmed }, opts.onLine);
        } else {
          this.#push(o, opts.onLine);
        }
      }
    });
    child.stderr?.setEncoding('utf8').on('data', (d: string) => {
      this.stderr += d;
      opts.onStderr?.(d);
    });
    this.exited = new Promise((resolve) => {
      child.once('close', (code: number | null, signal: NodeJS.Signals | null) => {
        this.#exit = { code, signal };
        for (const w of this.#waiters) w.reject(this.#endedError());
        this.#waiters.clear();
        resolve({ code, signal, stderr: this.stderr, lines: this.lines });
      });
    });
  }

  /**
   * The first line (already seen or still to come) for which `pred` is true. Rejects when the
   * child exits without one, or after `ms` milliseconds if given.
   */
  waitFor(pred: (o: JsonLine) => boolean, ms?: number): Promise<JsonLine> {
    const hit = this.lines.find(pred);
    if (hit) return Promise.resolve(hit);
    if (this.#exit) return Promise.reject(this.#endedError());
    return new Promise((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      const w: Waiter = {
        pred,
        resolve: (o) => (clearTimeout(timer), resolve(o)),
        reject: (e) => (clearTimeout(timer), reject(e)),
      };
      if (ms !== undefined) {
        timer = setTimeout(() => {
          this.#waiters.delete(w);
          reject(new Error(`timed out after ${ms} ms waiting for a line from ${this.#name}; stderr: ${this.#reason()}`));
        }, ms);
      }
      this.#waiters.add(w);
    });
  }

  #push(o: JsonLine, onLine: ((o: JsonLine) => void) | undefined): void {
    this.lines.push(o);
    onLine?.(o);
    for (const w of [...this.#waiters]) {
      let match: boolean;
      try {
        match = w.pred(o);
      } catch (e) {
        this.#waiters.delete(w);
        w.reject(e instanceof Error ? e : new Error(String(e)));
        continue;
      }
      if (match) {
        this.#waiters.delete(w);
        w.resolve(o);
      }
    }
  }

  #endedError(): Error {
    const how = this.#exit?.signal ? `signal ${this.#exit.signal}` : `code ${String(this.#exit?.code)}`;
    return new Error(`${this.#name} exited (${how}) before the expected line; stderr: ${this.#reason()}`);
  }

  #reason(): string {
    return this.stderr.trim() || `(empty); last lines: ${JSON.stringify(this.lines.slice(-5))}`;
  }
}

function parseObject(text: string): JsonLine | undefined {
  try {
    const o: unknown = JSON.parse(text);
    return typeof o === 'object' && o !== null && !Array.isArray(o) ? (o as JsonLine) : undefined;
  } catch {
    return undefined;
  }
}
