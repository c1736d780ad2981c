// A small I/O-free transfer model for the attack tests: a systematic source-symbol carousel as the
// inner sender, and a receiver that keeps the first symbol it gets for each (SBN, ESI), assembles a
// block when all of its source symbols are held, and (when protected) checks the block against the
// manifest before "writing" it. Real FEC is exercised in transfer.test.ts with the transfer layer.
import { blockRanges, parseOti } from '../../src/crypto/blocks.js';
import { fountainSealer, type Sealer } from '../../src/crypto/guard.js';
import type { PacketAuth } from '../../src/crypto/packet-auth.js';
import { decodePacket, encodeDescription, encodeSymbol } from '../../src/wire/fountain.js';
import type { ManifestFields } from '../../src/crypto/manifest.js';

export class CarouselSender {
  private sbn = 0;
  private round = 0;
  private readonly blocks: { offset: number; length: number; k: number }[];
  private readonly T: number;
  private readonly sealer: Sealer | undefined;
  private sent = 0;
  /** A send pipeline producer (src/transfer/pipeline.ts) that never builds an encoder. */
  readonly nextBuildsEncoder = false;
  constructor(
    private readonly f: ManifestFields,
    private readonly object: Uint8Array,
    auth?: PacketAuth,
  ) {
    const oti = parseOti(f.oti);
    this.T = oti.T;
    this.blocks = blockRanges(oti).map((r) => ({ ...r, k: Math.ceil(r.length / oti.T) }));
    this.sealer = auth ? fountainSealer(auth) : undefined;
  }

  private header() {
    return { objectId: this.f.objectId, flags: this.sealer?.flags ?? 0, trailer: this.sealer ? new Uint8Array(this.sealer.trailerLength) : undefined };
  }

  next(_now: number): { datagram: Uint8Array; kind: string } {
    this.sent += 1;
    if (this.sent % 50 === 1) {
      const d = encodeDescription(this.header(), { oti: this.f.oti, size: this.f.size, hashAlgorithm: 1, hash: this.f.objectHash, name: 'fw' });
      this.sealer?.seal(d);
      return { datagram: d, kind: 'description' };
    }
    const b = this.blocks[this.sbn]!;
    const esi = this.round % b.k;
    const symbol = new Uint8Array(this.T);
    symbol.set(this.object.subarray(b.offset + esi * this.T, Math.min(b.offset + b.length, b.offset + (esi + 1) * this.T)));
    const d = encodeSymbol(this.header(), { sbn: this.sbn, esi, symbol });
    this.sealer?.seal(d);
    this.sbn += 1;
    if (this.sbn === this.blocks.length) {
      this.sbn = 0;
      this.round += 1;
    }
    return { datagram: d, kind: 'symbol' };
  }
}

export class BlockReceiver {
  readonly stats = { symbols: 0, blocksWritten: 0, blocksRejected: 0 };
  private readonly held: Map<number, Uint8Array>[];
  private readonly done: boolean[];
  private readonly blocks: { offset: number; length: number; k: number }[];
  readonly output: Uint8Array;
  private readonly T: number;

  constructor(
    f: ManifestFields,
    /** Block check before writing (the defence); undefined = unprotected. */
    private readonly check?: (sbn: number, data: Uint8Array) => boolean,
  ) {
    const oti = parseOti(f.oti);
    this.T = oti.T;
    this.blocks = blockRanges(oti).map((r) => ({ ...r, k: Math.ceil(r.length / oti.T) }));
    this.held = this.blocks.map(() => new Map());
    this.done = this.blocks.map(() => false);
    this.output = new Uint8Array(f.size);
  }

  get complete(): boolean {
    return this.done.every(Boolean);
  }

  push(datagram: Uint8Array): void {
    let p;
    try {
      p = decodePacket(datagram);
    } catch {
      return;
    }
    if (p.kind !== 'symbol') return;
    const { sbn, esi, symbol } = p.symbol;
    const b = this.blocks[sbn];
    if (!b || this.done[sbn] || esi >= b.k || symbol.length !== this.T) return;
    const m = this.held[sbn]!;
    if (m.has(esi)) return;
    this.stats.symbols += 1;
    m.set(esi, symbol.slice());
    if (m.size < b.k) return;
    const data = new Uint8Array(b.length);
    for (let e = 0; e < b.k; e++) data.set(m.get(e)!.subarray(0, Math.min(this.T, b.length - e * this.T)), e * this.T);
    if (this.check && !this.check(sbn, data)) {
      // Poisoned block: discard its symbols and collect again.
      this.stats.blocksRejected += 1;
      m.clear();
      return;
    }
    this.output.set(data, b.offset);
    this.done[sbn] = true;
    this.stats.blocksWritten += 1;
  }
}
