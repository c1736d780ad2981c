import type { Command } from '../command.js';

/** A sub-command as the top-level help lists it; its module is loaded only when it runs. */
export interface CommandEntry {
  name: string;
  summary: string;
  load(): Promise<Command>;
}

// One line per sub-command; each lives in its own file in this folder. Loading only the one that
// runs keeps the others' code out of the process: a receiver does not load the lab, the key tools
// or the carousel (less memory on a device, and a sender starts sending sooner).
export const commands: CommandEntry[] = [
  { name: 'send', summary: 'send a file to a multicast channel (RaptorQ fountain; --format iotupd: the original carousel)', load: async () => (await import('./send.js')).sendCommand },
  { name: 'recv', summary: 'receive a file from a multicast channel (resumable; verifies signed releases with --trust)', load: async () => (await import('./recv.js')).recvCommand },
  { name: 'demo', summary: 'lab demo: a publisher and five devices running the agent (demo transfer: one sender, three receivers)', load: async () => (await import('./demo.js')).demoCommand },
  { name: 'keygen', summary: 'generate signing keys (root / delegated) and group keys', load: async () => (await import('./keygen.js')).keygenCommand },
  { name: 'manifest', summary: 'inspect and verify signed manifests', load: async () => (await import('./manifest.js')).manifestCommand },
  { name: 'release', summary: 'make a release directory (image + signed manifest) for iotupd publish', load: async () => (await import('./release.js')).releaseCommand },
  { name: 'publish', summary: 'announce and serve releases (signed beacons, halts, reload on SIGHUP)', load: async () => (await import('./publish.js')).publishCommand },
  { name: 'agent', summary: 'device agent: install a signed release, health check, commit or roll back', load: async () => (await import('./agent.js')).agentCommand },
  { name: 'status', summary: 'live table of the fleet from its signed status reports (multicast, SQLite history)', load: async () => (await import('./status.js')).statusCommand },
  { name: 'dashboard', summary: 'local web page with the fleet live: versions, rollout, failed, quiet and unknown devices, history', load: async () => (await import('./dashboard.js')).dashboardCommand },
  { name: 'fleet', summary: 'enrol and approve device status keys (the registry that status trusts)', load: async () => (await import('./fleet.js')).fleetCommand },
  { name: 'channel', summary: 'print the multicast group of a channel name (Librecast-compatible)', load: async () => (await import('./channel.js')).channelCommand },
];
