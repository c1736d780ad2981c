// The fleet dashboard: a local web page fed by server-sent events from a Collector
// (docs/fleet-status.md "Dashboard"). node:http only; the page is three static files served from
// memory (assets.ts). Device data reaches the page only as JSON, and the page renders it with
// textContent, so a device cannot inject markup or script; the Content-Security-Policy
// (script-src 'self', no inline script) is the second line of that defence.
import { EventEmitter } from 'node:events';
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { isIP } from 'node:net';
import type { AddressInfo, Socket } from 'node:net';
import { UsageError } from '../../errors.js';
import { SocketError } from '../../net/socket.js';
import type { Collector } from '../collector.js';
import { APP_CSS, APP_JS, indexHtml } from './assets.js';
import { historyJson, snapshot } from './view.js';

export const DEFAULT_DASHBOARD_PORT = 8421;

/** Every response: no inline script or style, nothing from elsewhere, no framing, no referrer (the token is in URLs). */
export const SECURITY_HEADERS: Readonly<Record<string, string>> = {
  'content-security-policy': "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
  'cache-control': 'no-store',
};

/** Tokens travel in URLs: URL-safe characters only, long enough not to be guessed. */
const TOKEN_RE = /^[A-Za-z0-9_~.-]{16,256}$/;

export interface DashboardOptions {
  collector: Collector;
  /** Address to listen on (an IP literal; default 127.0.0.1). Any non-loopback address needs `token`. */
  bind?: string;
  /** TCP port (default 8421; 0: any free port). */
  port?: number;
  /** Required on every request when set (query `token`, header `x-iotupd-token` or `authorization: Bearer`). */
  token?: string;
  /** Most devices per list in one snapshot (default 500). */
  limit?: number;
  /** Snapshots to the page at most this often when the fleet changes (default 250 ms). */
  throttleMs?: number;
  /** A snapshot at least this often even without changes, so "seen" ages and quiet devices move (default 5000 ms). */
  refreshMs?: number;
  /** Most open event streams (default 32); more get 503. */
  maxClients?: number;
}

export interface DashboardAddress {
  address: string;
  port: number;
  /** The page's URL, with the token when there is one. */
  url: string;
}

export interface DashboardEvents {
  listening: [DashboardAddress];
  /** A refused request: 401 (no token), 403 (wrong token or a foreign Host on loopback). */
  refused: [{ status: number; path: string; from?: string }];
}

/** True for 127.0.0.0/8 and ::1 (and their IPv4-mapped form): reachable from this machine only. */
export function isLoopback(address: string): boolean {
  const a = address.toLowerCase();
  if (isIP(a) === 4) return a.startsWith('127.');
  if (a.startsWith('::ffff:') && isIP(a.slice(7)) === 4) return a.slice(7).startsWith('127.');
  return a === '::1' || a === '0:0:0:0:0:0:0:1';
}

/** A random URL-safe token (192 bits). */
export function generateToken(): string {
  return randomBytes(24).toString('base64url');
}

/** Constant-time comparison: both sides hashed first, so neither length nor content leaks through timing. */
function tokenMatches(given: string, expected: string): boolean {
  const a = createHash('sha256').update(given).digest();
  const b = createHash('sha256').update(expected).digest();
  return timingSafeEqual(a, b);
}

/** Validate the listening options (also before anything else is opened): the bind address, port and token. */
export function checkDashboardOptions(opts: { bind?: string; port?: number; token?: string }): { bind: string; port: number } {
  const bind = opts.bind ?? '127.0.0.1';
  if (isIP(bind) === 0) throw new UsageError(`bind address must be an IPv4 or IPv6 address, got '${bind}'`, 'ERR_BAD_BIND_ADDRESS');
  const port = opts.port ?? DEFAULT_DASHBOARD_PORT;
  if (!(Number.isInteger(port) && port >= 0 && port <= 65_535)) throw new UsageError(`port must be an integer from 0 to 65535, got '${String(opts.port)}'`, 'ERR_BAD_PORT');
  if (opts.token !== undefined && !TOKEN_RE.test(opts.token)) throw new UsageError('token must be 16 to 256 characters from A-Z a-z 0-9 _ ~ . -');
  // Off this machine, anyone who can reach the port could read the fleet: refuse without a token.
  if (opts.token === undefined && !isLoopback(bind)) throw new UsageError(`binding to ${bind} (not loopback) needs a token`);
  return { bind, port };
}

export class Dashboard extends EventEmitter<DashboardEvents> {
  readonly collector: Collector;
  readonly bind: string;
  readonly port: number;
  readonly token: string | undefined;
  readonly #limit: number;
  readonly #throttleMs: number;
  readonly #refreshMs: number;
  readonly #maxClients: number;
  readonly #clients = new Set<ServerResponse>();
  readonly #sockets = new Set<Socket>();
  #server: Server | undefined;
  #address: DashboardAddress | undefined;
  #pending: NodeJS.Timeout | undefined;
  #refresh: NodeJS.Timeout | undefined;
  readonly #onEvent = (): void => this.#schedule();

  constructor(opts: DashboardOptions) {
    super();
    this.collector = opts.collector;
    const checked = checkDashboardOptions(opts);
    this.bind = checked.bind;
    this.port = checked.port;
    this.token = opts.token;
    this.#limit = opts.limit ?? 500;
    this.#throttleMs = opts.throttleMs ?? 250;
    this.#refreshMs = opts.refreshMs ?? 5000;
    this.#maxClients = opts.maxClients ?? 32;
  }

  /** Where it listens, once listening. */
  get address(): DashboardAddress | undefined {
    return this.#address;
  }

  /** Open event streams. */
  get clients(): number {
    return this.#clients.size;
  }

  /** Start serving; `signal` aborting closes it. */
  async listen(opts: { signal?: AbortSignal } = {}): Promise<DashboardAddress> {
    if (this.#server) throw new UsageError('dashboard is already listening');
    opts.signal?.throwIfAborted();
    const server = createServer((req, res) => this.#handle(req, res));
    server.on('connection', (s) => {
      this.#sockets.add(s);
      s.on('close', () => this.#sockets.delete(s));
    });
    this.#server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', (err: NodeJS.ErrnoException) => {
        this.#server = undefined;
        reject(new SocketError(`cannot listen on [${this.bind}]:${this.port}: ${err.message}`, 'ERR_BIND'));
      });
      server.listen({ host: this.bind, port: this.port, exclusive: true }, () => resolve());
    });
    const port = (server.address() as AddressInfo).port;
    const host = isIP(this.bind) === 6 ? `[${this.bind}]` : this.bind;
    const url = `http://${host}:${port}/${this.token !== undefined ? `?token=${encodeURIComponent(this.token)}` : ''}`;
    this.#address = { address: this.bind, port, url };
    this.collector.on('event', this.#onEvent);
    this.#refresh = setInterval(() => this.#push(), this.#refreshMs);
    this.#refresh.unref();
    opts.signal?.addEventListener('abort', () => void this.close(), { once: true });
    this.emit('listening', this.#address);
    return this.#address;
  }

  /** Stop serving and end every event stream. Idempotent; the collector stays open. */
  async close(): Promise<void> {
    const server = this.#server;
    this.#server = undefined;
    this.collector.off('event', this.#onEvent);
    clearTimeout(this.#pending);
    clearInterval(this.#refresh);
    this.#pending = undefined;
    for (const c of this.#clients) c.end();
    this.#clients.clear();
    if (!server) return;
    await new Promise<void>((resolve) => {
      server.close(() => resolve());
      for (const s of this.#sockets) s.destroy();
    });
  }

  #schedule(): void {
    if (this.#pending !== undefined || this.#clients.size === 0) return;
    this.#pending = setTimeout(() => {
      this.#pending = undefined;
      this.#push();
    }, this.#throttleMs);
    this.#pending.unref();
  }

  #snapshotText(): string {
    return JSON.stringify(snapshot(this.collector, Date.now(), this.#limit));
  }

  #push(): void {
    if (this.#clients.size === 0 || !this.collector.store.db.open) return;
    const frame = `event: snapshot\ndata: ${this.#snapshotText()}\n\n`;
    for (const c of this.#clients) {
      // A client that does not read its stream is dropped rather than buffered without bound.
      if (c.writableLength > 8 * 1024 * 1024) {
        this.#clients.delete(c);
        c.destroy();
      } else c.write(frame);
    }
  }

  #authorized(req: IncomingMessage, url: URL, res: ServerResponse): boolean {
    if (this.token === undefined) {
      // Loopback without a token: only a Host naming this machine, so a web page elsewhere cannot
      // read the dashboard through DNS rebinding.
      const host = (req.headers.host ?? '').toLowerCase().replace(/:\d+$/, '');
      const ok = host === 'localhost' || host === '[::1]' || host === this.bind || host === `[${this.bind}]` || host.startsWith('127.');
      if (!ok) this.#refuse(req, res, url, 403, 'forbidden: unexpected Host');
      return ok;
    }
    let given = url.searchParams.get('token') ?? undefined;
    const header = req.headers['x-iotupd-token'];
    if (given === undefined && typeof header === 'string') given = header;
    const auth = req.headers.authorization;
    if (given === undefined && typeof auth === 'string' && auth.startsWith('Bearer ')) given = auth.slice(7).trim();
    if (given === undefined) {
      res.setHeader('www-authenticate', 'Bearer realm="iotupd dashboard"');
      this.#refuse(req, res, url, 401, 'a token is required');
      return false;
    }
    if (!tokenMatches(given, this.token)) {
      this.#refuse(req, res, url, 403, 'wrong token');
      return false;
    }
    return true;
  }

  #refuse(req: IncomingMessage, res: ServerResponse, url: URL, status: number, text: string): void {
    const ev: DashboardEvents['refused'][0] = { status, path: url.pathname };
    if (req.socket.remoteAddress !== undefined) ev.from = req.socket.remoteAddress;
    this.emit('refused', ev);
    send(res, status, 'text/plain; charset=utf-8', `${text}\n`);
  }

  #handle(req: IncomingMessage, res: ServerResponse): void {
    for (const [k, v] of Object.entries(SECURITY_HEADERS)) res.setHeader(k, v);
    let url: URL;
    try {
      url = new URL(req.url ?? '/', 'http://dashboard.invalid');
    } catch {
      send(res, 400, 'text/plain; charset=utf-8', 'bad request\n');
      return;
    }
    if (!this.#authorized(req, url, res)) return;
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('allow', 'GET, HEAD');
      send(res, 405, 'text/plain; charset=utf-8', 'method not allowed\n');
      return;
    }
    try {
      switch (url.pathname) {
        case '/':
        case '/index.html':
          send(res, 200, 'text/html; charset=utf-8', indexHtml(this.token));
          return;
        case '/app.js':
          send(res, 200, 'text/javascript; charset=utf-8', APP_JS);
          return;
        case '/app.css':
          send(res, 200, 'text/css; charset=utf-8', APP_CSS);
          return;
        case '/api/snapshot':
          send(res, 200, 'application/json', this.#snapshotText());
          return;
        case '/api/history': {
          const id = url.searchParams.get('device');
          if (id === null || id.length === 0) {
            send(res, 400, 'application/json', JSON.stringify({ error: 'device is required' }));
            return;
          }
          const device = this.collector.device(id);
          if (device === undefined) {
            send(res, 404, 'application/json', JSON.stringify({ error: 'no such device' }));
            return;
          }
          const limit = Math.min(1000, Math.max(1, Number(url.searchParams.get('limit') ?? 100) || 100));
          send(res, 200, 'application/json', JSON.stringify({ deviceId: id, history: this.collector.history(id, limit).map(historyJson) }));
          return;
        }
        case '/api/events':
          this.#openStream(req, res);
          return;
        default:
          send(res, 404, 'text/plain; charset=utf-8', 'not found\n');
      }
    } catch (err) {
      send(res, 500, 'text/plain; charset=utf-8', `internal error: ${(err as Error).message}\n`);
    }
  }

  #openStream(req: IncomingMessage, res: ServerResponse): void {
    if (this.#clients.size >= this.#maxClients) {
      send(res, 503, 'text/plain; charset=utf-8', 'too many event streams\n');
      return;
    }
    res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', connection: 'keep-alive' });
    if (req.method === 'HEAD') {
      res.end();
      return;
    }
    // The page reconnects by itself (EventSource) and gets a whole snapshot each time, so a
    // restarted dashboard or a dropped connection needs no replay of missed events.
    res.write(`retry: 2000\nevent: snapshot\ndata: ${this.#snapshotText()}\n\n`);
    this.#clients.add(res);
    req.on('close', () => this.#clients.delete(res));
  }
}

function send(res: ServerResponse, status: number, type: string, body: string): void {
  if (res.headersSent) {
    res.end();
    return;
  }
  res.statusCode = status;
  res.setHeader('content-type', type);
  res.setHeader('content-length', Buffer.byteLength(body));
  res.end(res.req.method === 'HEAD' ? undefined : body);
}
