// Password hashing with Argon2id at OWASP's recommended parameters (19 MiB, 2 passes,
// parallelism 1; OWASP Password Storage Cheat Sheet). Hashing runs off the event loop.
import { hash, verify } from '@node-rs/argon2';

const PARAMS = { algorithm: 2 /* Argon2id */, memoryCost: 19_456, timeCost: 2, parallelism: 1 } as const;

export const MIN_PASSWORD = 8;
/** Bounded so that a huge password cannot cost more than a normal one. */
export const MAX_PASSWORD = 256;

export function hashPassword(password: string): Promise<string> {
  return hash(password, PARAMS);
}

// Verified against when the email is unknown, so both paths take the same time.
let dummy: Promise<string> | undefined;

export async function verifyPassword(stored: string | undefined, password: string): Promise<boolean> {
  if (stored === undefined) {
    dummy ??= hashPassword('not-a-real-password');
    await verify(await dummy, password).catch(() => false);
    return false;
  }
  try {
    return await verify(stored, password);
  } catch {
    return false;
  }
}
