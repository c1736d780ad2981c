/**
 * iotupd/lab: a private IPv6 LAN of network namespaces for tests, demos and benchmarks.
 *
 *   labSupport()                    { ok: true, mode } | { ok: false, reason, userns }
 *   reexecInUserns()                re-run this process in `unshare -rnm` when not root
 *   Lab.create({ hosts: [...] })    hosts: { name, netns, ifname, address, port }
 *     .spawn(host, cmd, args, opts) / .spawnNode(host, script, args, opts)   ChildProcess, killed by destroy()
 *     .exec(host, cmd, args)        { code, stdout, stderr }
 *     .impair(host, { lossPercent, duplicatePercent, rateMbit })   traffic INTO host
 *     .link(host, 'down' | 'up')    cut a host off the LAN and reconnect it
 *     .snmp6(host)                  /proc/net/snmp6 counters (Udp6RcvbufErrors, ...)
 *     .destroy()                    idempotent; also at exit and on SIGINT/SIGTERM/SIGHUP
 *   withLab(opts, fn)               destroy guaranteed
 *   reapStaleLabs()                 delete labs whose owner process died (SIGKILL); create() calls it
 *
 * Test helpers (src/lab/testing.ts):
 *   labTest(name, opts, fn)         node:test wrapper (skips with the reason when unsupported)
 *   startReceiver / runSender       run the multicast probe (src/lab/probe.ts) in a host
 *   sendMarker(lab, host, group)    end markers for receivers started with --until-id 99
 *   new JsonLines(child, opts)      a child's stdout JSON lines + stderr; waitFor(pred, ms?), exited
 */
export { Lab, withLab, labNamespaces, reapStaleLabs, type LabHost, type LabOptions, type Impairment, type ExecResult } from './lab.js';
export { labSupport, reexecInUserns, usernsAvailable, USERNS_ENV, type LabSupport } from './support.js';
export { labTest, startReceiver, runSender, sendMarker, MARKER_ID, type ProbeReceiver, type LabTestOptions } from './testing.js';
export { PROBE_SCRIPT, type ProbeRecvResult, type ProbeSendResult } from './probe.js';
export { JsonLines, type JsonLine, type JsonLinesOptions, type JsonLinesExit } from './json-lines.js';
