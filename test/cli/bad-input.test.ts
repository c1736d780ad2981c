// Every command with bad input as a new user would type it: one line on stderr naming the
// problem, a non-zero exit at once (no listening until a timeout), nothing on the disk.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const MAIN = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));

interface Case {
  args: string[];
  code: number;
  says: RegExp;
}

test('bad input: one clear line, a non-zero exit within seconds, nothing written', () => {
  const dir = mkdtempSync(join(tmpdir(), 'iotupd-bad-'));
  try {
    const file = join(dir, 'f.bin');
    writeFileSync(file, 'payload');
    const cases: Case[] = [
      { args: ['send', file, '--rate', '-5', '--channel', 'x', '--interface', 'lo'], code: 2, says: /--rate must be a number from 0\.001 to 100000, got '-5'/ },
      { args: ['send', file, '--rate', 'fast', '--channel', 'x', '--interface', 'lo'], code: 2, says: /--rate must be a number/ },
      { args: ['send', file, '--channel', 'x'], code: 2, says: /--interface IF is required/ },
      { args: ['send', file, '--interface', 'lo'], code: 2, says: /--channel NAME \(or --group ADDR\) is required/ },
      { args: ['send', file, '--channel', 'x', '--group', 'ff1e::1', '--interface', 'lo'], code: 2, says: /not both/ },
      { args: ['send', file, '--group', '2001:db8::1', '--interface', 'lo'], code: 2, says: /not a multicast address/ },
      { args: ['send', file, '--group', 'nonsense', '--interface', 'lo'], code: 2, says: /not an IPv6 address/ },
      { args: ['send', file, '--channel', 'x', '--interface', 'lo', '--format', 'udp'], code: 2, says: /--format must be one of fountain, iotupd, got 'udp'/ },
      { args: ['send', file, '--channel', 'x', '--interface', 'lo', '--scope', 'moon'], code: 2, says: /scope must be one of link, site, org, global, got 'moon'/ },
      { args: ['send', file, '--channel', 'x', '--interface', 'lo', '--port', '99999'], code: 2, says: /--port must be a number from 1 to 65535/ },
      { args: ['send', join(dir, 'missing.bin'), '--channel', 'x', '--interface', 'lo'], code: 1, says: /cannot read .*missing\.bin/ },
      { args: ['send', file, '--channel', 'x', '--interface', 'nosuch0'], code: 1, says: /no such network interface 'nosuch0'/ },
      { args: ['send', file, '--channel', 'x', '--interface', 'lo', '--sequence', '5'], code: 2, says: /--sequence: need a signed manifest/ },
      { args: ['recv', '/proc/x', '--channel', 'x', '--interface', 'lo', '--timeout', '30'], code: 1, says: /cannot write in \/proc/ },
      { args: ['recv', '/proc/x', '--channel', 'x', '--interface', 'lo', '--timeout', '30', '--format', 'iotupd'], code: 1, says: /cannot write \/proc\/x/ },
      { args: ['recv', dir, '--channel', 'x', '--interface', 'lo', '--timeout', '30'], code: 1, says: /it is a directory/ },
      { args: ['recv', join(dir, 'no', 'such', 'x'), '--channel', 'x', '--interface', 'lo', '--timeout', '30'], code: 1, says: /cannot write in .*no\/such/ },
      { args: ['recv', join(dir, 'out'), '--channel', 'x', '--interface', 'lo', '--timeout', '-1'], code: 2, says: /--timeout must be a number/ },
      { args: ['recv', join(dir, 'out'), '--channel', 'x', '--interface', 'lo', '--product', 'p'], code: 2, says: /--product needs --trust/ },
      { args: ['recv', join(dir, 'out'), '--channel', 'x', '--interface', 'lo', '--trust', join(dir, 'none.pub'), '--product', 'p', '--state', join(dir, 'st')], code: 1, says: /cannot read .*none\.pub/ },
      { args: ['recv', join(dir, 'out'), '--channel', 'x', '--interface', 'lo', '--object-id', 'xyz'], code: 2, says: /--object-id must be 16 hex digits/ },
      { args: ['recv', '--channel', 'x', '--interface', 'lo'], code: 2, says: /exactly one OUT path/ },
      { args: ['demo', '--timeout', '-1'], code: 2, says: /--timeout must be a number from 1 to 86400, got '-1'/ },
      { args: ['keygen'], code: 2, says: /--out PREFIX is required/ },
      { args: ['manifest', 'inspect', join(dir, 'none.manifest')], code: 1, says: /cannot read/ },
      { args: ['channel'], code: 2, says: /missing NAME/ },
      { args: ['frobnicate'], code: 2, says: /unknown command 'frobnicate'/ },
      { args: ['recv', join(dir, 'out'), '--channel', '--interface', 'lo'], code: 2, says: /--channel needs a value/ },
      { args: ['agent', 'install', '--config', join(dir, 'none.json'), '--manifest', 'm', '--image', 'i'], code: 2, says: /config .*none\.json: cannot be read/ },
      { args: ['publish'], code: 2, says: /--interface and --key are required/ },
      { args: ['publish', '--interface', 'lo', '--key', join(dir, 'none.key'), '--releases', dir], code: 1, says: /cannot read .*none\.key/ },
      { args: ['release', 'create', '--image', file], code: 2, says: /are required/ },
      { args: ['status'], code: 2, says: /--product P is required/ },
      { args: ['status', '--product', 'p', '--db', join(dir, 'none', 'x.db')], code: 2, says: /no database at/ },
      { args: ['status', '--product', 'p', '--interface', 'nosuch0', '--once'], code: 1, says: /no such network interface 'nosuch0'/ },
      { args: ['fleet'], code: 2, says: /a sub-command is required/ },
      { args: ['dashboard', '--product', 'p', '--db', join(dir, 'none.db')], code: 2, says: /no database at .*none\.db/ },
      { args: ['status', '--product', 'p', '--interface', 'lo', '--once', '--trust', join(dir, 'none.pub')], code: 2, says: /no trust file at .*none\.pub/ },
      { args: ['status', '--product', 'p', '--follow'], code: 2, says: /give --interface IF to listen, or --db FILE/ },
      { args: ['status', '--product', 'p', '--follow', '--db', file, '--interface', 'lo'], code: 2, says: /--follow shows a database another collector writes/ },
      { args: ['dashboard', '--product', 'p', '--follow', '--db', file, '--registry', file], code: 2, says: /--follow shows the trust of the collector that writes the database/ },
      { args: ['publish', '--interface', 'lo', '--key', file, '--releases', dir, '--hold', '3'], code: 2, says: /--hold needs --registry FILE/ },
      { args: ['publish', '--interface', 'lo', '--key', file, '--releases', dir, '--registry', join(dir, 'none.reg')], code: 2, says: /no registry at .*none\.reg/ },
      { args: ['dashboard', '--product', 'p', '--interface', 'lo', '--trust', `${file},${join(dir, 'missing.pub')}`], code: 2, says: /no trust file at .*missing\.pub/ },
    ];
    for (const c of cases) {
      const t0 = Date.now();
      const r = spawnSync(process.execPath, [MAIN, ...c.args], { encoding: 'utf8', timeout: 20_000 });
      const what = `iotupd ${c.args.join(' ')}`;
      assert.equal(r.status, c.code, `${what}: exit ${String(r.status)}, stderr ${r.stderr}`);
      const lines = r.stderr.trimEnd().split('\n');
      assert.equal(lines.length, 1, `${what}: one line on stderr, got ${JSON.stringify(r.stderr)}`);
      assert.match(lines[0] as string, /^iotupd: /, what);
      assert.match(lines[0] as string, c.says, what);
      assert.ok(!/\n\s+at /.test(r.stderr), `${what}: no stack trace`);
      // Well before any --timeout: the mistake is reported at once, not after listening.
      assert.ok(Date.now() - t0 < 15_000, `${what}: took ${Date.now() - t0} ms`);
    }
    assert.deepEqual(readdirSync(dir).sort(), ['f.bin'], 'nothing written beside the inputs');
    assert.ok(!existsSync('/proc/x'));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
