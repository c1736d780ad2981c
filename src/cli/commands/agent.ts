// `iotupd agent ...`: a thin layer over src/agent (docs/agent.md).
import { Agent, BundleSource, faultsFromSpec, loadAgentConfig, type AgentResult } from '../../agent/index.js';
import { UsageError } from '../../errors.js';
import type { Command } from '../command.js';
import { parse } from '../command.js';

const usage = `usage: iotupd agent install --config FILE --manifest MANIFEST --image IMAGE [--no-wait]
       iotupd agent resume --config FILE
       iotupd agent status --config FILE [--json]

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

export const agentCommand: Command = {
  usage,
  async run(argv, signal) {
    const { values, positionals } = parse(argv, {
      config: { type: 'string' },
      manifest: { type: 'string' },
      image: { type: 'string' },
      'no-wait': { type: 'boolean' },
      json: { type: 'boolean' },
    });
    const [sub, ...rest] = positionals;
    if ((sub !== 'install' && sub !== 'resume' && sub !== 'status') || rest.length > 0) throw new UsageError(usage.split('\n')[0] as string);
    if (values.config === undefined) throw new UsageError('--config FILE is required');
    const config = loadAgentConfig(values.config);
    const fault = process.env.IOTUPD_AGENT_FAULT;
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
