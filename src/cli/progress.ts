/**
 * Progress output shared by every transfer format's CLI commands: a one-line bar on a
 * terminal, JSON lines otherwise (or with --json).
 *
 * JSON lines go to stdout, one object per line, with a `type`:
 *   {"type":"progress","t":1.002,"label":"recv","done":123,"total":456,"percent":26.97,...detail}
 *     at most one per `jsonIntervalMs` (default 1 s), plus one at the end;
 *   {"type":"event","t":..,"event":"resume",...}   things worth a log line;
 *   {"type":"stats","t":..,...}                    the final statistics, once.
 * The bar goes to stderr, redrawn in place at most every 100 ms when stderr is a terminal,
 * else as plain lines every 5 s. Keys of `detail` are the caller's; values must be JSON-safe.
 */

export interface ProgressOptions {
  /** Force JSON lines (true) or the bar (false). Default: JSON unless stdout is a terminal. */
  json?: boolean;
  /** Short name shown before the bar and in every JSON line (e.g. 'recv', 'send'). */
  label?: string;
  /** Streams (default process.stdout / process.stderr). */
  stdout?: NodeJS.WritableStream & { isTTY?: boolean; columns?: number };
  stderr?: NodeJS.WritableStream & { isTTY?: boolean; columns?: number };
  jsonIntervalMs?: number;
  /** Clock in ms (default performance.now). */
  now?: () => number;
}

export interface ProgressUpdate {
  done: number;
  /** 0 or undefined when not known yet. */
  total?: number;
  /** How `done`/`total` are shown on the bar: 'bytes' (KiB/MiB) or a plain count. */
  unit?: 'bytes' | 'count';
  /** Short text after the numbers on the bar (e.g. 'loss 9.8 % dup 12'). */
  text?: string;
  /** Extra fields for the JSON line. */
  detail?: Record<string, unknown>;
}

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 ** 2) return `${(n / 1024).toFixed(1)} KiB`;
  if (n < 1024 ** 3) return `${(n / 1024 ** 2).toFixed(1)} MiB`;
  return `${(n / 1024 ** 3).toFixed(2)} GiB`;
}

export class Progress {
  readonly json: boolean;
  readonly label: string;
  readonly #out: NonNullable<ProgressOptions['stdout']>;
  readonly #err: NonNullable<ProgressOptions['stderr']>;
  readonly #now: () => number;
  readonly #t0: number;
  readonly #jsonInterval: number;
  #lastDraw = -Infinity;
  #last: ProgressUpdate | undefined;
  #barShown = false;
  #finished = false;

  constructor(opts: ProgressOptions = {}) {
    this.#out = opts.stdout ?? process.stdout;
    this.#err = opts.stderr ?? process.stderr;
    this.json = opts.json ?? this.#out.isTTY !== true;
    this.label = opts.label ?? '';
    this.#now = opts.now ?? (() => performance.now());
    this.#t0 = this.#now();
    this.#jsonInterval = opts.jsonIntervalMs ?? 1000;
  }

  #t(): number {
    return Math.round(this.#now() - this.#t0) / 1000;
  }

  #line(obj: Record<string, unknown>): void {
    this.#out.write(JSON.stringify({ type: obj.type, t: this.#t(), ...(this.label && { label: this.label }), ...obj }) + '\n');
  }

  #jsonProgress(u: ProgressUpdate): void {
    const total = u.total ?? 0;
    this.#line({
      type: 'progress',
      done: u.done,
      total,
      percent: total > 0 ? Math.round((u.done / total) * 10000) / 100 : 0,
      ...u.detail,
    });
  }

  #barText(u: ProgressUpdate): string {
    const total = u.total ?? 0;
    const frac = total > 0 ? Math.min(1, u.done / total) : 0;
    const fmt = (n: number): string => (u.unit === 'bytes' ? formatBytes(n) : String(n));
    const nums = total > 0 ? `${fmt(u.done)}/${fmt(total)}` : fmt(u.done);
    const pct = total > 0 ? `${(frac * 100).toFixed(1).padStart(5)}%` : '   --%';
    const tail = `${pct} ${nums}${u.text ? ' ' + u.text : ''}`;
    const head = this.label ? `${this.label} ` : '';
    const cols = this.#err.columns ?? 80;
    const width = Math.max(10, Math.min(40, cols - head.length - tail.length - 4));
    const filled = Math.round(frac * width);
    return `${head}[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${tail}`.slice(0, Math.max(20, cols - 1));
  }

  #drawBar(u: ProgressUpdate): void {
    if (this.#err.isTTY === true) {
      this.#err.write(`\r\x1b[K${this.#barText(u)}`);
      this.#barShown = true;
    } else {
      this.#err.write(this.#barText(u) + '\n');
    }
  }

  #clearBar(): void {
    if (this.#barShown) {
      this.#err.write('\r\x1b[K');
      this.#barShown = false;
    }
  }

  /** Report the current state; rendered when the interval since the last rendering has passed. */
  update(u: ProgressUpdate): void {
    if (this.#finished) return;
    this.#last = u;
    const now = this.#now();
    const interval = this.json ? this.#jsonInterval : this.#err.isTTY === true ? 100 : 5000;
    if (now - this.#lastDraw < interval) return;
    this.#lastDraw = now;
    if (this.json) this.#jsonProgress(u);
    else this.#drawBar(u);
  }

  /** Something worth one log line: JSON event, or a line above the bar. */
  event(name: string, text: string, fields: Record<string, unknown> = {}): void {
    if (this.json) {
      this.#line({ ...fields, type: 'event', event: name, message: text });
    } else {
      this.#clearBar();
      this.#err.write(`${this.label ? this.label + ': ' : ''}${text}\n`);
      if (this.#last && this.#err.isTTY === true) this.#drawBar(this.#last);
    }
  }

  /** Final state and statistics; nothing is printed after this. */
  finish(stats: Record<string, unknown>, text: string, last?: ProgressUpdate): void {
    if (this.#finished) return;
    const u = last ?? this.#last;
    if (this.json) {
      if (u) this.#jsonProgress(u);
      this.#line({ type: 'stats', ...stats });
    } else {
      if (u) this.#drawBar(u);
      if (this.#barShown) this.#err.write('\n');
      this.#barShown = false;
      this.#err.write(`${this.label ? this.label + ': ' : ''}${text}\n`);
    }
    this.#finished = true;
  }
}
