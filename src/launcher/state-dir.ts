// The state folder (.ladder/): data, logs, the shared secret, and an owner lock so that two
// Ladders never drive the same data at once.
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { isAlive } from '../kit/process/pid.ts';
import { LadderFailure } from '../kit/errors.ts';

export function ensureDir(dir: string): string {
  mkdirSync(dir, { recursive: true });
  return dir;
}

/** The secret that signs session cookies: LADDER_SECRET, else one made once and kept. */
export function loadSecret(stateDir: string): string {
  if (process.env.LADDER_SECRET) return process.env.LADDER_SECRET;
  const file = path.join(ensureDir(stateDir), 'secret');
  if (existsSync(file)) return readFileSync(file, 'utf8').trim();
  const secret = randomBytes(32).toString('base64url');
  writeFileSync(file, secret + '\n', { mode: 0o600 });
  return secret;
}

/** The live process holding the lock in dir, if any (a dead holder's lock is stale). */
export function lockHolder(dir: string): number | undefined {
  const file = path.join(dir, 'owner.pid');
  if (!existsSync(file)) return undefined;
  const pid = Number(readFileSync(file, 'utf8').trim());
  return Number.isInteger(pid) && pid > 0 && pid !== process.pid && isAlive(pid) ? pid : undefined;
}

/** Takes the lock or throws naming the process that holds it. */
export function acquireLock(dir: string, what: string): () => void {
  const file = path.join(ensureDir(dir), 'owner.pid');
  const holder = lockHolder(dir);
  if (holder !== undefined) {
    throw new LadderFailure('STATE_LOCKED', `${what} is already running from this folder (pid ${holder}). Stop it first (Ctrl-C in its terminal, or kill ${holder}).`);
  }
  writeFileSync(file, String(process.pid));
  return () => {
    try {
      if (readFileSync(file, 'utf8').trim() === String(process.pid)) rmSync(file);
    } catch {
      /* already gone */
    }
  };
}

/** A free loopback port, picked by the kernel. */
export function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.once('error', reject);
    srv.listen(0, host, () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}
