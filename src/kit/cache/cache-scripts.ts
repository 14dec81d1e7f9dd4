// The cache tier's Redis side: the Lua scripts in ./lua (one round trip each, atomic; their
// headers are the contract: KEYS, ARGV, reply), bound to a connection through the kit's
// script loader, with typed calls. Every key a script touches is passed in KEYS, built by
// CacheKeys for the generation the caller believes current; a script that finds another
// generation does nothing and says which one is current, and the caller builds its keys
// again (a round trip more, once per new generation).
//
// Positions are 16 hex digits, zero padded, so that string order is numeric order.
import type { Redis } from 'ioredis';
import { bindScript, loadLuaScript, type RunScript } from '../redis/script-loader.ts';
import { CACHE_DEFAULTS } from './cache-defaults.ts';
import { CacheKeys } from './cache-keys.ts';

const script = (file: string) => loadLuaScript(new URL(`./lua/${file}`, import.meta.url));
const SCRIPTS = {
  lookup: script('lookup-6.lua'),
  fill: script('fill-4.lua'),
  refreshLease: script('refresh-lease-3.lua'),
  invalidate: script('invalidate-4.lua'),
  ack: script('ack-1.lua'),
  releaseLease: script('release-lease-1.lua'),
  addMember: script('add-member-2.lua'),
  bumpGeneration: script('bump-generation-1.lua'),
  peekValue: script('peek-value-2.lua'),
  filterReady: script('filter-ready-2.lua'),
};

export type LookupStatus = 'hit' | 'absent' | 'lease' | 'wait' | 'gen';

export interface LookupReply {
  gen: string;
  status: LookupStatus;
  /** hit: the stored value; otherwise the tombstone ('' for none). */
  payload: string;
  filter: '' | 'ready' | 'building';
}

export type FillResult = 'ok' | 'gen' | 'lease' | 'stale';

export class CacheScripts {
  private readonly run: { [K in keyof typeof SCRIPTS]: RunScript };

  constructor(
    client: Redis,
    readonly keys: CacheKeys,
  ) {
    const run = {} as Record<keyof typeof SCRIPTS, RunScript>;
    for (const name of Object.keys(SCRIPTS) as (keyof typeof SCRIPTS)[]) run[name] = bindScript(client, SCRIPTS[name]);
    this.run = run;
  }

  async lookup(
    gen: string,
    key: string,
    filter: { name: string; positions: readonly number[] } | undefined,
    token: string,
    leaseMs: number,
  ): Promise<LookupReply> {
    const k = this.keys;
    const name = filter?.name ?? '';
    const [g, status, payload, filterState] = (await this.run.lookup(
      [k.gen, k.value(gen, key), k.tombstone(gen, key), k.lease(gen, key), k.filter(gen, name), k.filterReady(gen, name)],
      [gen, filter ? '1' : '', token, leaseMs, ...(filter?.positions ?? [])],
    )) as [string, LookupStatus, string, LookupReply['filter']];
    return { gen: g, status, payload, filter: filterState };
  }

  async fill(gen: string, key: string, token: string, position: bigint, payload: string, ttlMs: number): Promise<FillResult> {
    const k = this.keys;
    return (await this.run.fill(
      [k.gen, k.lease(gen, key), k.tombstone(gen, key), k.value(gen, key)],
      [gen, token, positionText(position), payload, Math.round(ttlMs)],
    )) as FillResult;
  }

  /** The lease for a background refresh: the tombstone when taken, undefined when not. */
  async refreshLease(gen: string, key: string, token: string, leaseMs: number): Promise<{ gen: string; tomb?: bigint }> {
    const k = this.keys;
    const [g, tomb] = (await this.run.refreshLease(
      [k.gen, k.lease(gen, key), k.tombstone(gen, key)],
      [gen, token, leaseMs],
    )) as [string, string?];
    return tomb === undefined ? { gen: g } : { gen: g, tomb: parsePosition(tomb) };
  }

  /** Receivers of the message, or undefined when `gen` is not current (nothing was done). */
  async invalidate(
    gen: string,
    key: string,
    position: bigint,
    tombstoneMs: number,
    id: string,
  ): Promise<{ gen: string; receivers: number | undefined }> {
    const k = this.keys;
    const [g, receivers] = (await this.run.invalidate(
      [k.gen, k.value(gen, key), k.lease(gen, key), k.tombstone(gen, key)],
      [gen, positionText(position), tombstoneMs, k.channel, Date.now(), id, key],
    )) as [string, number];
    return { gen: g, receivers: receivers < 0 ? undefined : receivers };
  }

  async ack(id: string): Promise<void> {
    await this.run.ack([this.keys.ack(id)]);
  }

  async releaseLease(gen: string, key: string, token: string): Promise<void> {
    await this.run.releaseLease([this.keys.lease(gen, key)], [token]);
  }

  /** Whether the bits went in; false when `gen` is not current (then `gen` says which is). */
  async addMember(gen: string, filter: string, positions: readonly number[]): Promise<{ gen: string; added: boolean }> {
    const k = this.keys;
    const [g, added] = (await this.run.addMember([k.gen, k.filter(gen, filter)], [gen, ...positions])) as [string, number];
    return { gen: g, added: added === 1 };
  }

  async bumpGeneration(): Promise<string> {
    return String(await this.run.bumpGeneration([this.keys.gen], [this.keys.channel]));
  }

  /** The value Redis holds ('' for none, or when `gen` is not current). */
  async peekValue(gen: string, key: string): Promise<{ gen: string; payload: string }> {
    const k = this.keys;
    const [g, payload] = (await this.run.peekValue([k.gen, k.value(gen, key)], [gen])) as [string, string];
    return { gen: g, payload };
  }

  async filterReady(gen: string, name: string): Promise<boolean> {
    const k = this.keys;
    return (await this.run.filterReady([k.gen, k.filterReady(gen, name)], [gen])) === 1;
  }
}

/**
 * Drops the whole cache: a new generation, and every web server empties its L1. For what
 * writes behind the app's back (the bench's seed); `prefix` as the cache was given it.
 */
export async function bumpCacheGeneration(client: Redis, prefix: string = CACHE_DEFAULTS.prefix): Promise<string> {
  return new CacheScripts(client, new CacheKeys(prefix)).bumpGeneration();
}

/** Formats a WAL position for the scripts: 16 hex digits, zero padded. */
export function positionText(p: bigint): string {
  return p.toString(16).padStart(16, '0');
}

export function parsePosition(text: string): bigint {
  return text === '' ? 0n : BigInt(`0x${text}`);
}
