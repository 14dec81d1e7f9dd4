// The click log's format, shared by its writer (each web server, click-log.ts) and the relay
// that ships it (click-log-shipper.ts). Pure functions, no I/O.
//
// A segment is an append-only file named `<producer>.clicks`, where the producer id is
// `<node>.<start ms>.<pid>.<seq>`: one writer, one process lifetime, one segment (a new one
// after SEGMENT_MAX_BYTES). Each click is one line, `<link id> <YYYY-MM-DD>\n`, or
// `<link id> <YYYY-MM-DD> <request key>\n` when the balancer gave its request a key
// (request-key.ts), written with one write(2), so a line is whole or absent, never torn by a
// killed process.
// A batch is a byte range [start, end) of one segment ending on a line boundary: the pair
// (producer, start) names it for ever, which is what makes a redelivered batch detectable.

import { isRequestKey } from '../http/request-key.ts';

export const SEGMENT_SUFFIX = '.clicks';
/** A segment this large is closed and the writer starts the next one. */
export const SEGMENT_MAX_BYTES = 64 * 1024 * 1024;

/** A producer id: node name, start time, pid and segment number; safe in a file name and a job id. */
const PRODUCER = /^([a-z][a-z0-9-]{0,30})\.(\d{1,15})\.(\d{1,10})\.(\d{1,6})$/;

export interface ProducerId {
  node: string;
  startedMs: number;
  pid: number;
  seq: number;
}

export function producerId(p: ProducerId): string {
  return `${p.node}.${p.startedMs}.${p.pid}.${p.seq}`;
}

export function parseProducerId(id: string): ProducerId | undefined {
  const m = PRODUCER.exec(id);
  if (!m) return undefined;
  return { node: m[1]!, startedMs: Number(m[2]), pid: Number(m[3]), seq: Number(m[4]) };
}

/** The segment file name of a producer, and back (undefined for any other file). */
export const segmentFile = (producer: string) => `${producer}${SEGMENT_SUFFIX}`;
export function producerOfFile(file: string): string | undefined {
  if (!file.endsWith(SEGMENT_SUFFIX)) return undefined;
  const id = file.slice(0, -SEGMENT_SUFFIX.length);
  return parseProducerId(id) ? id : undefined;
}

const LINK_ID = /^[1-9][0-9]{0,18}$/;
const DAY = /^\d{4}-\d{2}-\d{2}$/;

/** One click's line. Throws on a value that would break the format (a bug, never user input). */
export function clickLine(linkId: string, day: string, key?: string): string {
  if (!LINK_ID.test(linkId) || !DAY.test(day) || (key !== undefined && !isRequestKey(key))) {
    throw new Error(`not a click: ${linkId.slice(0, 30)} ${day.slice(0, 30)} ${key?.slice(0, 40) ?? ''}`);
  }
  return key === undefined ? `${linkId} ${day}\n` : `${linkId} ${day} ${key}\n`;
}

/** Bytes of `buf` up to and including its last newline: a batch never ends mid-line. */
export function wholeLines(buf: Buffer): number {
  return buf.lastIndexOf(0x0a) + 1;
}

/**
 * Clicks of one link on one day, counted; `keys` are the request keys of those among them
 * that had one (in line order, repeats kept), so `count` >= keys.length. A worker counts a
 * key it has applied before as no click.
 */
export interface ClickCount {
  linkId: string;
  day: string;
  count: number;
  keys?: string[];
}

/**
 * Counts the clicks in whole lines of a segment, per link and day (the order of first
 * appearance). Lines that do not parse are counted in `bad` and skipped: they cannot come
 * from the writer, and stopping the pipeline for them would hold every later click back.
 */
export function countClicks(text: string): { clicks: ClickCount[]; lines: number; bad: number } {
  const byKey = new Map<string, ClickCount>();
  let lines = 0;
  let bad = 0;
  let from = 0;
  for (;;) {
    const nl = text.indexOf('\n', from);
    if (nl < 0) break;
    const line = text.slice(from, nl);
    from = nl + 1;
    lines++;
    const space = line.indexOf(' ');
    const linkId = space < 0 ? '' : line.slice(0, space);
    const second = space < 0 ? -1 : line.indexOf(' ', space + 1);
    const day = space < 0 ? '' : second < 0 ? line.slice(space + 1) : line.slice(space + 1, second);
    const requestKey = second < 0 ? undefined : line.slice(second + 1);
    if (!LINK_ID.test(linkId) || !DAY.test(day) || (requestKey !== undefined && !isRequestKey(requestKey))) {
      bad++;
      continue;
    }
    const group = second < 0 ? line : line.slice(0, second);
    let c = byKey.get(group);
    if (c) c.count++;
    else byKey.set(group, (c = { linkId, day, count: 1 }));
    if (requestKey !== undefined) (c.keys ??= []).push(requestKey);
  }
  return { clicks: [...byKey.values()], lines, bad };
}

/** A batch's job id at the broker: stable for its byte range's start, never containing `:` (BullMQ refuses it). */
export function batchJobId(producer: string, start: number): string {
  return `c.${producer}.${start}`;
}
