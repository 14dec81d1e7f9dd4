// The pagination cursor of a link list: the (created_at, id) of the last item a page
// showed, base64url-encoded. A cursor comes back from the client, so it is checked against
// the real bounds of both columns before it reaches SQL: a calendar date that exists (no
// February 30th, no hour 24) in the years a timestamptz accepts and we ever write, and an
// id that fits a bigint. Anything else is 400 VALIDATION_FAILED, never a database error.
import { LadderError } from '../../kit/errors.ts';

export interface Cursor {
  /** ISO 8601, UTC, millisecond precision: what Date#toISOString gives. */
  createdAt: string;
  /** A bigint in decimal. */
  id: string;
}

const MAX_CURSOR = 100;
const SHAPE = /^((\d{4})-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z)\|(\d{1,19})$/;
const MAX_BIGINT = 9_223_372_036_854_775_807n;

export function encodeCursor(createdAt: Date, id: string): string {
  return Buffer.from(`${createdAt.toISOString()}|${id}`).toString('base64url');
}

/** The cursor, undefined when none was given, or a 400 VALIDATION_FAILED. */
export function decodeCursor(cursor: unknown): Cursor | undefined {
  if (cursor === undefined || cursor === '') return undefined;
  const bad = new LadderError('VALIDATION_FAILED', 'cursor is not valid.', { details: { field: 'cursor' } });
  if (typeof cursor !== 'string' || cursor.length > MAX_CURSOR || !/^[A-Za-z0-9_-]+$/.test(cursor)) throw bad;
  const m = SHAPE.exec(Buffer.from(cursor, 'base64url').toString('latin1'));
  if (!m) throw bad;
  const [, createdAt, year, id] = m as unknown as [string, string, string, string];
  // Round trip: Date.parse rolls 2024-02-30 over to March 1st and accepts 24:00, so only a
  // string that is its own parse's ISO form names a real instant.
  const ms = Date.parse(createdAt);
  if (Number.isNaN(ms) || new Date(ms).toISOString() !== createdAt || Number(year) < 1970) throw bad;
  if (BigInt(id) > MAX_BIGINT) throw bad;
  return { createdAt, id };
}
