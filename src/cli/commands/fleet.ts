import type { Command } from '../command.js';
import { parse } from '../command.js';
import { UsageError } from '../../errors.js';
import { toHex } from '../../crypto/bytes.js';
import { keyIdOf, loadPublicKey } from '../../crypto/keys.js';
import { FleetStore, Registry } from '../../fleet/index.js';

const usage = `usage: iotupd fleet enrol --registry FILE --device-id ID --key DEVICE.pub [--replace]
       iotupd fleet approve --registry FILE --db FILE --device-id ID
       iotupd fleet list --registry FILE

Manages the registry of device status keys that 'iotupd status' trusts (docs/fleet-status.md).
  enrol     add a device's public key (the status-key.pub its agent created in its state dir)
  approve   trust the key an unknown device reported with, as the collector's database saw it
  list      print the enrolled devices and their key ids
The registry file is created when missing and replaced atomically; a running collector reloads it.`;

export const fleetCommand: Command = {
  usage,
  async run(argv) {
    const [sub, ...rest] = argv;
    const { values: v, positionals } = parse(rest, {
      registry: { type: 'string' },
      'device-id': { type: 'string' },
      key: { type: 'string' },
      db: { type: 'string' },
      replace: { type: 'boolean' },
    });
    if (positionals.length > 0) throw new UsageError(`unexpected argument '${positionals[0]}'`);
    if (sub === undefined) throw new UsageError("a sub-command is required: enrol, approve or list (see 'iotupd fleet --help')");
    if (!['enrol', 'approve', 'list'].includes(sub)) throw new UsageError(`unknown fleet sub-command '${sub}' (enrol, approve, list)`);
    if (v.registry === undefined) throw new UsageError('--registry FILE is required');
    if (sub === 'list') {
      const reg = Registry.load(v.registry);
      for (const [id, key] of reg.entries()) console.log(`${id} ${toHex(keyIdOf(key))}`);
      return 0;
    }
    const id = v['device-id'];
    if (id === undefined) throw new UsageError('--device-id ID is required');
    const reg = Registry.load(v.registry, true);
    let key: Uint8Array;
    if (sub === 'enrol') {
      if (v.key === undefined) throw new UsageError('--key DEVICE.pub is required');
      if (v.db !== undefined) throw new UsageError('--db belongs to approve');
      key = loadPublicKey(v.key).publicKey;
    } else {
      if (v.db === undefined) throw new UsageError('--db FILE (the collector database that saw the device) is required');
      if (v.key !== undefined) throw new UsageError('approve takes the key from --db; to give a key file use enrol');
      const store = new FleetStore(v.db, { readonly: true });
      try {
        const d = store.get(id);
        if (d === undefined) throw new UsageError(`device '${id}' is not in ${v.db}`);
        key = d.publicKey;
      } finally {
        store.close();
      }
    }
    const result = reg.enrol(id, key, v.replace === true);
    reg.save(v.registry);
    console.log(`${id}: key ${toHex(keyIdOf(key))} ${result === 'unchanged' ? 'already enrolled' : result} in ${v.registry}`);
    return 0;
  },
};
