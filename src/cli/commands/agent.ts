// `iotupd agent ...`: a thin layer over src/agent (docs/agent.md).
import { setTimeout as sleep } from 'node:timers/promises';
import { Agent, BundleSource, faultsFromSpec, loadAgentConfig, type AgentConfig, type AgentResult } from '../../agent/index.js';
import { MulticastSource } from '../../agent/multicast.js';
import { reportStatus } from '../../agent/report.js';
import { toHex } from '../../crypto/bytes.js';
import { loadPublicKey } from '../../crypto/keys.js';
import { FleetReporter } from '../../fleet/reporter-driver.js';
import { DEFAULT_BUDGET } from '../../fleet/reporter.js';
import { TrustStore } from '../../crypto/trust.js';
import { IotupdError, UsageError } from '../../errors.js';
import type { Command } from '../command.js';
import { parse } from '../command.js';

const usage = `usage: iotupd agent --config FILE [--json] [--stats-interval SECONDS]
       iotupd agent install --config FILE --manifest MANIFEST --image IMAGE [--no-wait]
       iotupd agent resume --config FILE
       iotupd agent status --config FILE [--json]

(no subcommand): the agent daemon. Resumes the release in progress (as after a reboot), then
  listens on the product's announce channel (config network.interface) and installs each
  release it is offered by the rules of docs/agent.md; signed HALTs stop or roll back releases.
  Prints one line per event (JSON lines with --json, the default when stdout is not a terminal)
  and the announce filter's counts every --stats-interval seconds (default 60) and at exit.
  Unless the config says "status": false, it multicasts signed status reports on the product's
  status channel; the ready event names the key to enrol ('iotupd fleet enrol').
  Runs until SIGTERM or SIGINT, then exits 0.
install: installs a local bundle (signed manifest + image) as the agent would install a release
  heard on the network: verify against the trust root, rollout policy, install, switch, health
  check, commit or roll back. A release in progress after a crash or reboot is resumed first.
  --no-wait   when the rollout says wait (a later wave, a window not open yet), exit at once
resume: finishes (or rolls back) the release in progress, as after a reboot.
status: prints the persisted state and the installed release.
The config file is described in docs/agent.md. Exit status: 0 installed, skipped, waiting or reboot
pending; 1 rolled back, failed or interrupted; 2 a usage or config mistake.`;

function describe(r: AgentResult): { line: string; code: number } {
  switch (r.result) {
    case 'idle':
      return { line: 'nothing in progress', code: 0 };
    case 'installed':
      return { line: `installed ${r.outcome.version} (sequence ${r.outcome.sequence})`, code: 0 };
    case 'rolled-back':
      return { line: `rolled back ${r.outcome.version}: ${r.outcome.reason ?? 'unknown reason'}`, code: 1 };
    case 'failed':
      return { line: `failed ${r.outcome.version}: ${r.outcome.reason ?? 'unknown reason'}`, code: 1 };
    case 'skipped':
      return { line: `skipped${r.skip.version ? ` ${r.skip.version}` : ''} (${r.skip.reason}): ${r.skip.detail}`, code: 0 };
    case 'waiting':
      return { line: `waiting until ${new Date(r.until * 1000).toISOString()}: ${r.detail}`, code: 0 };
    case 'reboot-pending':
      return { line: `switched to ${r.release.version}; reboot pending, health check after it`, code: 0 };
    case 'interrupted':
      return { line: `interrupted in state ${r.phase}: ${r.error.message} (resumed at the next start)`, code: 1 };
  }
}

type Emit = (type: string, fields: Record<string, unknown>, text: string) => void;

function emitter(json: boolean): Emit {
  return (type, fields, text) => {
    if (json) console.log(JSON.stringify({ type, at: Date.now(), ...fields }));
    else console.log(`agent: ${text}`);
  };
}

/** The long-running agent on the multicast source (docs/agent.md "The agent daemon"). */
async function daemon(config: AgentConfig, agent: Agent, trust: TrustStore, emit: Emit, statsInterval: number, signal: AbortSignal): Promise<number> {
  const source = new MulticastSource({ config, trust });
  const reporter = config.status === false ? undefined : await openReporter(config, agent, source, emit);
  const rel = (r: { version?: string | undefined; sequence?: string | undefined; manifestId?: string | undefined } | undefined) =>
    r ? { version: r.version, sequence: r.sequence, manifestId: r.manifestId } : {};
  agent.on('state', (e) => emit('state', { phase: e.phase, ...rel(e.release) }, `${e.phase}${e.release ? ` ${e.release.version} (sequence ${e.release.sequence})` : ''}`));
  agent.on('progress', (e) => emit('progress', { phase: e.phase, message: e.message }, `${e.phase}: ${e.message}`));
  agent.on('skipped', (e) => emit('skipped', { ...rel(e), reason: e.reason, detail: e.detail }, `skipped${e.version ? ` ${e.version}` : ''} (${e.reason}): ${e.detail}`));
  for (const kind of ['installed', 'rolled-back', 'failed'] as const) {
    agent.on(kind, (o) => emit(kind, { ...rel(o), reason: o.reason, code: o.code }, `${kind} ${o.version} (sequence ${o.sequence})${o.reason ? `: ${o.reason}` : ''}`));
  }
  agent.on('halted', (e) => emit('halted', { ...e }, `halt of ${e.version ?? e.manifestId.slice(0, 16)} (sequence ${e.sequence}): ${e.action}: ${e.detail}`));
  source.on('listening', (c) => {
    const st = reporter
      ? { statusKey: toHex(reporter.reporter.identity.key.keyId), statusKeyFile: reporter.reporter.identity.publicKeyFile, statusGroup: reporter.reporter.group }
      : {};
    const text = reporter ? `; status reports on ${st.statusGroup} signed by key ${st.statusKey} (enrol ${st.statusKeyFile})` : '';
    emit('ready', { group: c.group, port: c.port, interface: c.interface, ...st, ...agent.status }, `listening on ${c.group} port ${c.port} (${c.interface})${text}`);
  });
  source.on('announced', (a) => emit('announced', { ...a }, `announced ${a.version} (sequence ${a.sequence}) on ${a.group}`));
  source.on('gave-up', (g) => emit('gave-up', { ...g }, `gave up ${g.version} (sequence ${g.sequence}): ${g.reason}; offered again in ${g.retryIn} s or later`));
  source.on('conflict', (c) => emit('conflict', { ...c }, `sequence ${c.sequence} announced by ${c.manifestIds.length} releases: refused`));
  // A halt is acted on at once, also while a release is downloaded or installed.
  source.on('halt', (h) => {
    agent.halt(h).catch((err: unknown) => emit('error', { message: (err as Error).message, code: (err as IotupdError).code }, `halt: ${(err as Error).message}`));
  });
  const stats = (final: boolean) => {
    const s = source.stats;
    emit('stats', { final, ...s }, `stats: ${s.datagrams} datagrams, ${s.offers} offers, ${s.halts} halts, refused ${Object.entries(s.refused).filter(([, n]) => n > 0).map(([k, n]) => `${k} ${n}`).join(', ') || 'none'}`);
  };
  const timer = setInterval(() => stats(false), statsInterval * 1000);
  try {
    if (config.network.maxBandwidthMbit !== undefined) {
      emit('progress', { phase: 'idle', message: 'network.maxBandwidthMbit does not apply to multicast reception: the publisher sets the rate' }, 'network.maxBandwidthMbit does not apply to multicast reception (the publisher sets the rate)');
    }
    while (!signal.aborted) {
      const results = await agent.run(source, signal).catch((err: unknown) => {
        if (signal.aborted) return [] as AgentResult[];
        throw err;
      });
      const last = results.at(-1);
      if (signal.aborted) break;
      if (last?.result === 'reboot-pending') {
        // The reboot command ran; the system goes down. Wait for the signal that ends the process.
        await sleep(2 ** 31 - 1, undefined, { signal }).catch(() => undefined);
      } else if (last?.result === 'interrupted') {
        // A commit or rollback that failed is retried (the loop guard bounds the retries).
        await sleep(10_000, undefined, { signal }).catch(() => undefined);
      }
    }
    return 0;
  } finally {
    clearInterval(timer);
    stats(true);
    if (reporter) {
      reporter.detach();
      await reporter.reporter.close();
    }
  }
}

/**
 * The daemon's status reporter (docs/agent.md "Status reports"). A reporter that cannot be
 * opened, or fails later, is an 'error' event: updates go on without status reports.
 */
async function openReporter(config: AgentConfig, agent: Agent, source: MulticastSource, emit: Emit): Promise<{ reporter: FleetReporter; detach: () => void } | undefined> {
  const settings = config.status === false ? undefined : config.status;
  const fail = (err: unknown) => {
    const e = err as IotupdError;
    emit('error', { source: 'status', message: e.message, code: e.code }, `status reports: ${e.message}`);
  };
  let reporter: FleetReporter;
  try {
    reporter = await FleetReporter.open({
      interface: config.network.interface as string,
      stateDir: config.stateDir,
      product: config.product,
      budget: settings?.budget ?? DEFAULT_BUDGET,
      ...(settings?.channel !== undefined ? { channel: settings.channel } : {}),
    });
  } catch (err) {
    fail(err);
    return undefined;
  }
  reporter.on('error', fail);
  try {
    return { reporter, detach: reportStatus(agent, reporter, { source, onError: fail }) };
  } catch (err) {
    fail(err);
    await reporter.close();
    return undefined;
  }
}

export const agentCommand: Command = {
  usage,
  async run(argv, signal) {
    const { values, positionals } = parse(argv, {
      config: { type: 'string' },
      manifest: { type: 'string' },
      image: { type: 'string' },
      'no-wait': { type: 'boolean' },
      json: { type: 'boolean' },
      'stats-interval': { type: 'string' },
    });
    const [sub, ...rest] = positionals;
    if ((sub !== undefined && sub !== 'install' && sub !== 'resume' && sub !== 'status') || rest.length > 0) throw new UsageError(usage.split('\n')[0] as string);
    if (values.config === undefined) throw new UsageError('--config FILE is required');
    const config = loadAgentConfig(values.config);
    const fault = process.env.IOTUPD_AGENT_FAULT;
    if (sub === undefined) {
      const statsInterval = values['stats-interval'] === undefined ? 60 : Number(values['stats-interval']);
      if (!Number.isFinite(statsInterval) || statsInterval < 0.1 || statsInterval > 86400) throw new UsageError('--stats-interval must be a number of seconds from 0.1 to 86400');
      if (!config.network.interface) throw new UsageError(`config ${values.config}: 'network.interface' is needed to run the agent daemon`, 'ERR_CONFIG');
      const trust = new TrustStore(config.trust.map((f) => loadPublicKey(f)));
      const agent = new Agent({ config, trust, ...(fault ? { faults: faultsFromSpec(fault) } : {}) });
      return daemon(config, agent, trust, emitter(values.json ?? !process.stdout.isTTY), statsInterval, signal);
    }
    const agent = new Agent({ config, ...(fault ? { faults: faultsFromSpec(fault) } : {}), waitForRollout: !values['no-wait'] });
    if (sub === 'status') {
      const s = agent.status;
      if (values.json) console.log(JSON.stringify(s));
      else {
        console.log(`installed   ${s.installedVersion ?? '(none)'} (sequence ${s.installedSequence})`);
        console.log(`state       ${s.phase}${s.release ? ` (release ${s.release.version})` : ''}`);
        if (s.last) console.log(`last        ${s.last.result} ${s.last.version}${s.last.reason ? `: ${s.last.reason}` : ''}`);
      }
      return 0;
    }
    agent.on('state', (e) => console.log(`agent: ${e.phase}${e.release ? ` ${e.release.version}` : ''}`));
    agent.on('progress', (e) => console.log(`agent: ${e.phase}: ${e.message}`));
    let results: AgentResult[];
    if (sub === 'resume') results = [await agent.resume(signal)];
    else {
      if (values.manifest === undefined || values.image === undefined) throw new UsageError('--manifest FILE and --image FILE are required');
      results = await agent.run(new BundleSource(values.manifest, values.image), signal);
    }
    let code = 0;
    for (const r of results.length > 0 ? results : [{ result: 'idle' } as AgentResult]) {
      const d = describe(r);
      console.log(`iotupd agent: ${d.line}`);
      code = Math.max(code, d.code);
    }
    return code;
  },
};
