// A device's status report body for the fleet tests (the collector and the dashboard view).
import type { StatusBody } from '../../src/wire/status.js';

export type Body = Omit<StatusBody, 'counter' | 'publicKey'>;

export const body = (deviceId: string, over: Partial<Body> = {}): Body => ({
  reason: 'heartbeat',
  time: 1000,
  uptime: 5,
  state: 'idle',
  installedSequence: 3n,
  deviceId,
  product: 'sensor',
  deviceClass: 'v2',
  installedVersion: '1.0.0',
  agentVersion: '0.1.0',
  ...over,
});
