// Bounded state for hostile input: whatever arrives, these tables never grow past their limit.

/** A Map that keeps at most `limit` entries, evicting the least recently used. */
export class LruMap<K, V> {
  readonly #map = new Map<K, V>();
  readonly limit: number;
  /** Entries evicted to make room (a sign of a flood or an undersized table). */
  evictions = 0;

  constructor(limit: number) {
    if (!Number.isInteger(limit) || limit < 1) throw new RangeError(`LruMap limit must be a positive integer, got ${limit}`);
    this.limit = limit;
  }

  get size(): number {
    return this.#map.size;
  }

  /** The value, marked as most recently used. */
  get(key: K): V | undefined {
    const v = this.#map.get(key);
    if (v !== undefined) {
      this.#map.delete(key);
      this.#map.set(key, v);
    }
    return v;
  }

  /** The value without touching its age. */
  peek(key: K): V | undefined {
    return this.#map.get(key);
  }

  has(key: K): boolean {
    return this.#map.has(key);
  }

  set(key: K, value: V): void {
    this.#map.delete(key);
    this.#map.set(key, value);
    while (this.#map.size > this.limit) {
      const oldest = this.#map.keys().next().value as K;
      this.#map.delete(oldest);
      this.evictions += 1;
    }
  }

  delete(key: K): boolean {
    return this.#map.delete(key);
  }

  entries(): IterableIterator<[K, V]> {
    return this.#map.entries();
  }
}

/**
 * Token bucket over a caller-supplied clock (milliseconds): `rate` tokens per second, at most
 * `burst` stored. A clock that steps backwards adds nothing (it never refunds or overdraws).
 */
export class TokenBucket {
  #tokens: number;
  #last: number | undefined;

  constructor(
    readonly rate: number,
    readonly burst: number,
  ) {
    if (!(rate > 0) || !(burst >= 1)) throw new RangeError(`token bucket needs rate > 0 and burst >= 1, got ${rate}, ${burst}`);
    this.#tokens = burst;
  }

  take(now: number, n = 1): boolean {
    if (this.#last !== undefined && now > this.#last) {
      this.#tokens = Math.min(this.burst, this.#tokens + ((now - this.#last) * this.rate) / 1000);
    }
    if (this.#last === undefined || now > this.#last) this.#last = now;
    if (this.#tokens < n) return false;
    this.#tokens -= n;
    return true;
  }
}
