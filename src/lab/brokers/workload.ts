// The messages: batches of clicks as the web tier's relay would publish them, one small
// (about 100 bytes of JSON, three clicks) and one batch-sized (about 16 KB, 665 clicks, the
// size the relay sends under load). Only `seq` differs between messages of a size, so
// building them costs nothing measurable; encoding them is the client's work, as it would be.
import type { ClickBatch } from './candidate.ts';

export interface MessageSize {
  label: string;
  clicks: number;
}

export const SMALL: MessageSize = { label: 'small', clicks: 3 };
export const BATCH: MessageSize = { label: 'batch', clicks: 665 };

const templates = new Map<MessageSize, ClickBatch['clicks']>();

export function clickBatch(size: MessageSize, seq: number): ClickBatch {
  let clicks = templates.get(size);
  if (!clicks) {
    clicks = [];
    for (let i = 0; i < size.clicks; i++) clicks.push([100_000 + ((i * 104_729) % 900_000), '2026-12-07', 1 + (i % 5)]);
    templates.set(size, clicks);
  }
  return { seq, clicks };
}

/** Bytes of one message of this size as JSON. */
export function messageBytes(size: MessageSize): number {
  return Buffer.byteLength(JSON.stringify(clickBatch(size, 1_000_000)));
}
