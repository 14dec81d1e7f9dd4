// Short codes: generated ones are 8 random characters of [A-Za-z0-9] (62^8 ≈ 2.2e14, so
// guessing a live code among even a million is a one-in-200-million shot per try);
// chosen ones are 3 to 32 of [A-Za-z0-9_-] and may not shadow a path the service uses.
import { randomInt } from 'node:crypto';
import { LadderError } from '../../kit/errors.ts';

const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
export const GENERATED_LENGTH = 8;
export const CODE_PATTERN = /^[A-Za-z0-9_-]{3,32}$/;

/** Paths of the service itself, compared case-insensitively. */
export const RESERVED_CODES: ReadonlySet<string> = new Set([
  'api', 'login', 'logout', 'signup', 'dashboard', 'healthz', 'readyz', 'metrics', 'static',
  'assets', 'preview', 'admin', 'favicon', 'robots', 'index', 'about', 'help', 'settings', 'account',
]);

export function generateCode(): string {
  let code = '';
  for (let i = 0; i < GENERATED_LENGTH; i++) code += ALPHABET[randomInt(ALPHABET.length)];
  return code;
}

/** True for a string that could be a stored code (cheap check before any query). */
export function isCodeShaped(code: string): boolean {
  return CODE_PATTERN.test(code);
}

/** Checks a user-chosen code; throws INVALID_CODE with the reason. */
export function checkChosenCode(code: unknown): string {
  if (typeof code !== 'string') throw new LadderError('INVALID_CODE', 'code must be a string.');
  if (!CODE_PATTERN.test(code)) {
    throw new LadderError('INVALID_CODE', 'code must be 3 to 32 characters of letters, digits, "_" and "-".');
  }
  if (RESERVED_CODES.has(code.toLowerCase())) throw new LadderError('INVALID_CODE', `"${code}" is reserved.`);
  return code;
}
