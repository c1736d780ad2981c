// The device's status driver: StatusReporter's decisions, DeviceIdentity's counter and key, one
// McastSocket. Timers are unref'd; nothing here touches process-wide state.
import { EventEmitter } from 'node:events';
import { UsageError } from '../errors.js';
import { resolveGroup } from '../channel/resolve.js';
import { DEFAULT_PORT, McastSocket } from '../net/socket.js';
import type { ReportReason } from '../wire/status.js';
import { statusChannel } from './channel.js';
import { DeviceIdentity } from './identity.js';
import { StatusReporter, type DeviceSnapshot, type RateBudget } from './reporter.js';

export interface FleetReporterOptions {
  /** The lab or device interface to send on (validated; never a default). */
  interface: string;
  /** The device's state dir: its status key and counter live here. */
  stateDir: string;
  /** Product whose status channel to use (`iotupd/<product>/status`). */
  product: string;
  budget?: RateBudget;
  port?: number;
  /** Explicit channel name or group instead of the product's status channel. */
  channel?: string;
  group?: string;
  hopLimit?: number;
  /** When the device started (ms), for the uptime field (default: now). */
  startedAt?: number;
  random?: () => number;
  signal?: AbortSignal;
}

export interface FleetReporterEvents {
  sent: [{ reason: ReportReason; counter: bigint; bytes: number }];
  error: [Error];
}

/** Sends a device's status reports. The agent calls `update(snapshot)` on every state change. */
export class FleetReporter extends EventEmitter<FleetReporterEvents> {
  readonly core: StatusReporter;
  readonly identity: DeviceIdentity;
  readonly group: string;
  readonly stats = { sent: 0, bytes: 0, errors: 0 };
  readonly #sock: McastSocket;
  readonly #product: string;
  #timer: NodeJS.Timeout | undefined;
  #closed = false;

  /** Destination port (the collector's). */
  readonly port: number;

  private constructor(sock: McastSocket, identity: DeviceIdentity, core: StatusReporter, group: string, product: string, port: number) {
    super();
    this.port = port;
    this.#sock = sock;
    this.identity = identity;
    this.core = core;
    this.group = group;
    this.#product = product;
  }

  static async open(opts: FleetReporterOptions): Promise<FleetReporter> {
    const group = resolveGroup(opts.group !== undefined ? { group: opts.group } : { channel: opts.channel ?? statusChannel(opts.product) });
    const identity = DeviceIdentity.open(opts.stateDir);
    const core = new StatusReporter({ budget: opts.budget ?? {}, random: opts.random ?? Math.random, startedAt: opts.startedAt ?? Date.now() });
    const sockOpts: Parameters<typeof McastSocket.open>[0] = { interface: opts.interface, port: 0 };
    if (opts.hopLimit !== undefined) sockOpts.hopLimit = opts.hopLimit;
    const sock = await McastSocket.open(sockOpts);
    const r = new FleetReporter(sock, identity, core, group, opts.product, opts.port ?? DEFAULT_PORT);
    opts.signal?.addEventListener('abort', () => void r.close(), { once: true });
    return r;
  }

  /** The agent's new state: a change is reported as soon as the rate budget allows. */
  update(snapshot: DeviceSnapshot): void {
    if (this.#closed) return;
    if (snapshot.product !== this.#product) throw new UsageError(`snapshot is for product '${snapshot.product}', reporter for '${this.#product}'`);
    this.core.changed(snapshot, Date.now());
    this.#pump();
  }

  /** A new budget for a running reporter (the agent daemon takes its budget from its config). */
  setBudget(budget: RateBudget): void {
    this.core.setBudget(budget);
    this.#pump();
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#timer) clearTimeout(this.#timer);
    await this.#sock.close();
  }

  #pump(): void {
    if (this.#closed) return;
    const now = Date.now();
    const due = this.core.next(now);
    if (due) {
      try {
        const bytes = this.identity.seal(due);
        this.#sock.send(bytes, this.group, this.port).then(
          () => {
            this.stats.sent += 1;
            this.stats.bytes += bytes.length;
          },
          (err: unknown) => {
            this.stats.errors += 1;
            if (this.listenerCount('error') > 0) this.emit('error', err as Error);
          },
        );
        this.emit('sent', { reason: due.reason, counter: this.identity.lastCounter ?? 0n, bytes: bytes.length });
      } catch (err) {
        this.stats.errors += 1;
        if (this.listenerCount('error') > 0) this.emit('error', err as Error);
      }
    }
    if (this.#timer) clearTimeout(this.#timer);
    const at = this.core.wakeAt(Date.now());
    if (Number.isFinite(at)) {
      this.#timer = setTimeout(() => this.#pump(), Math.max(1, at - Date.now()));
      this.#timer.unref();
    }
  }
}
