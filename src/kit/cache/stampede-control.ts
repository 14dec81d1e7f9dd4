// Keeping a burst of misses for one key from becoming a burst of loads. Across servers, a
// Redis lease decides who loads (lookup-6.lua); these are the process's side of it: lease
// tokens, one load per key at a time in this process (single flight), and jittered TTLs so
// that keys filled together do not all expire together.
import { randomBytes } from 'node:crypto';

/** Lease tokens: a random prefix per process and a counter (unique, and cheap on a miss). */
const TOKEN_PREFIX = randomBytes(9).toString('base64url');
let tokens = 0;

export function nextToken(): string {
  return `${TOKEN_PREFIX}.${(++tokens).toString(36)}`;
}

/** Concurrent calls for one key share the first one's promise until it settles. */
export class SingleFlight {
  private readonly flights = new Map<string, Promise<unknown>>();

  run<V>(key: string, fn: () => Promise<V>): Promise<V> {
    const running = this.flights.get(key) as Promise<V> | undefined;
    if (running) return running;
    const p = fn().finally(() => this.flights.delete(key));
    this.flights.set(key, p);
    return p;
  }
}

/** ±10%, so that keys filled together do not all expire together. */
export function jitter(ms: number): number {
  return ms * (0.9 + Math.random() * 0.2);
}
