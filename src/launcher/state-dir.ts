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

/**
 * The lowest local port of the kernel's range for outgoing connections: a port handed out
 * from that range may be taken by some connection (Patroni to etcd, a load driver) before the
 * node that was given it binds it, seconds later at startup (likely why a sentinel once
 * exited at its start in a full test run under load; not proven).
 */
function ephemeralLow(): number {
  try {
    const lo = Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]);
    if (Number.isInteger(lo) && lo > 1024) return lo;
  } catch {
    /* not Linux: the default below */
  }
  return 32768;
}

/** Ports this process handed out: never twice, though each is free only until its node binds it. */
const handedOut = new Set<number>();
// Above the ports browsers and fetch() refuse to connect to (10080 is the highest of them).
const PORT_FLOOR = 20_000;

function listenOnce(port: number, host: string): Promise<number | undefined> {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.unref();
    srv.once('error', () => resolve(undefined));
    srv.listen(port, host, () => {
      const addr = srv.address();
      const bound = typeof addr === 'object' && addr ? addr.port : undefined;
      srv.close(() => resolve(bound));
    });
  });
}

/**
 * A free loopback port for a node, below the kernel's ephemeral range (so no outgoing
 * connection takes it before the node binds it), picked at random so that two launchers
 * rarely try the same one; the kernel's own pick when that range is crowded.
 */
export async function freePort(host = '127.0.0.1'): Promise<number> {
  const span = ephemeralLow() - PORT_FLOOR;
  for (let i = 0; span > 0 && i < 50; i++) {
    const port = PORT_FLOOR + Math.floor(Math.random() * span);
    if (handedOut.has(port)) continue;
    const bound = await listenOnce(port, host);
    if (bound !== undefined) {
      handedOut.add(bound);
      return bound;
    }
  }
  for (;;) {
    const bound = await listenOnce(0, host);
    if (bound === undefined) throw new Error(`no free port on ${host}`);
    if (!handedOut.has(bound)) {
      handedOut.add(bound);
      return bound;
    }
  }
}
