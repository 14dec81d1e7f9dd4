// Request-body checks at the edge: the body must be a JSON object with exactly the known
// fields, each of the right type and size. Failures are VALIDATION_FAILED naming the field.
// No string field may hold U+0000: Postgres text cannot store it (the statement would fail
// with a 500), and no email, password or URL needs it.
import { LadderError } from '../../kit/errors.ts';

export function objectBody(body: unknown, allowed: readonly string[]): Record<string, unknown> {
  if (body === undefined || body === null || typeof body !== 'object' || Array.isArray(body)) {
    throw new LadderError('VALIDATION_FAILED', 'The body must be a JSON object.');
  }
  for (const key of Object.keys(body)) {
    if (!allowed.includes(key)) {
      throw new LadderError('VALIDATION_FAILED', `Unknown field "${key.slice(0, 40)}".`, { details: { field: key.slice(0, 40) } });
    }
  }
  return body as Record<string, unknown>;
}

export function stringField(body: Record<string, unknown>, field: string, min: number, max: number): string {
  const v = body[field];
  if (v === undefined) throw new LadderError('VALIDATION_FAILED', `${field} is required.`, { details: { field } });
  if (typeof v !== 'string') throw new LadderError('VALIDATION_FAILED', `${field} must be a string.`, { details: { field } });
  if (v.length < min || v.length > max) {
    throw new LadderError('VALIDATION_FAILED', `${field} must be ${min} to ${max} characters.`, { details: { field } });
  }
  if (v.includes('\u0000')) throw new LadderError('VALIDATION_FAILED', `${field} must not contain a NUL character.`, { details: { field } });
  return v;
}

const EMAIL = /^[^\s\u0000-\u001f\u007f@<>()[\]\\,;:"]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$/;

export function emailField(body: Record<string, unknown>): string {
  const email = stringField(body, 'email', 3, 254).trim().toLowerCase();
  if (!EMAIL.test(email)) throw new LadderError('VALIDATION_FAILED', 'email is not an email address.', { details: { field: 'email' } });
  return email;
}
