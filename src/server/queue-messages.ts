// The bodies of rung 9's messages, shared by their producer (the relay) and their consumers
// (the workers), with the checks a consumer runs before trusting one: a message is input.
import { isRequestKey } from '../kit/http/request-key.ts';
import type { ClickCount } from '../kit/queue/click-log-format.ts';
import type { ClickBatch } from '../kit/queue/click-log-shipper.ts';
import type { OutboxMessage } from '../kit/queue/outbox-relay.ts';

/**
 * A click batch on the wire: its id and [linkId, day, count] entries, with a fourth element,
 * the request keys among those clicks, when they had any (click-log-format.ts, ClickCount).
 */
export interface ClickBatchBody {
  producer: string;
  start: number;
  end: number;
  clicks: ([string, string, number] | [string, string, number, string[]])[];
}

export function clickBatchBody(b: ClickBatch): ClickBatchBody {
  return {
    producer: b.producer,
    start: b.start,
    end: b.end,
    clicks: b.clicks.map((c) => (c.keys?.length ? [c.linkId, c.day, c.count, c.keys] : [c.linkId, c.day, c.count])),
  };
}

const PRODUCER = /^[a-z][a-z0-9.-]{0,80}$/;
const LINK_ID = /^[1-9][0-9]{0,18}$/;
const DAY = /^\d{4}-\d{2}-\d{2}$/;
const MAX_ENTRIES = 1_000_000;

export class BadMessage extends Error {}

export function parseClickBatch(body: unknown): { producer: string; start: number; end: number; clicks: ClickCount[] } {
  const b = body as Partial<ClickBatchBody> | null;
  if (!b || typeof b.producer !== 'string' || !PRODUCER.test(b.producer)) throw new BadMessage('click batch: bad producer');
  if (!Number.isSafeInteger(b.start) || !Number.isSafeInteger(b.end) || b.start! < 0 || b.end! <= b.start!) throw new BadMessage('click batch: bad range');
  if (!Array.isArray(b.clicks) || b.clicks.length > MAX_ENTRIES) throw new BadMessage('click batch: bad clicks');
  let keyCount = 0;
  const clicks = b.clicks.map((c): ClickCount => {
    if (!Array.isArray(c) || typeof c[0] !== 'string' || !LINK_ID.test(c[0]) || typeof c[1] !== 'string' || !DAY.test(c[1]) || !Number.isSafeInteger(c[2]) || c[2] < 1) {
      throw new BadMessage('click batch: bad entry');
    }
    if (c.length === 3) return { linkId: c[0], day: c[1], count: c[2] };
    const keys: unknown = c[3];
    if (c.length !== 4 || !Array.isArray(keys) || keys.length < 1 || keys.length > c[2] || (keyCount += keys.length) > MAX_ENTRIES) {
      throw new BadMessage('click batch: bad request keys');
    }
    if (!keys.every((k) => typeof k === 'string' && isRequestKey(k))) throw new BadMessage('click batch: bad request key');
    return { linkId: c[0], day: c[1], count: c[2], keys: keys as string[] };
  });
  return { producer: b.producer, start: b.start!, end: b.end!, clicks };
}

export function parseLinkEvent(body: unknown): { id: string; type: string; ownerId: string; url: string | null } {
  const e = body as Partial<OutboxMessage> | null;
  if (!e || typeof e.id !== 'string' || !/^[1-9][0-9]{0,18}$/.test(e.id) || typeof e.type !== 'string' || e.type.length > 40) throw new BadMessage('link event: bad id or type');
  const p = e.payload as { ownerId?: unknown; url?: unknown } | undefined;
  if (!p || typeof p.ownerId !== 'string' || !/^[1-9][0-9]{0,18}$/.test(p.ownerId)) throw new BadMessage('link event: bad owner');
  return { id: e.id, type: e.type, ownerId: p.ownerId, url: typeof p.url === 'string' ? p.url : null };
}
