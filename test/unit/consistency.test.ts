// The pieces of rung 4's read-your-writes and monotonic reads that need no server: the
// token codec (it comes back from clients), the staleness bound, the routing decision, the
// cookie that carries the token, and the replica settings.
import Fastify from 'fastify';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { loadServerConfig } from '../../src/kit/config.ts';
import {
  decodeToken,
  encodeToken,
  formatLsn,
  mergeTokens,
  parseLsn,
  type ConsistencyToken,
} from '../../src/kit/db/consistency-token.ts';
import type { ReplicaView } from '../../src/kit/db/replica-monitor.ts';
import { replicaUnavailable, routeRead } from '../../src/kit/db/replica-router.ts';
import { WalHistory } from '../../src/kit/db/wal-history.ts';
import { CONSISTENCY_COOKIE, ConsistencyCookie } from '../../src/kit/http/consistency-cookie.ts';
import { sign } from '../../src/kit/http/cookies.ts';
import type { RequestSession } from '../../src/kit/session/request-session.ts';

describe('consistency token', () => {
  it('reads and prints WAL positions as Postgres does', () => {
    expect(parseLsn('0/0')).toBe(0n);
    expect(parseLsn('16/B3748')).toBe((0x16n << 32n) | 0xb3748n);
    expect(formatLsn(parseLsn('16/B3748')!)).toBe('16/B3748');
    expect(formatLsn(parseLsn('FFFFFFFF/FFFFFFFF')!)).toBe('FFFFFFFF/FFFFFFFF');
    for (const bad of ['', '16', '16/', '/1', '1/2/3', '123456789/0', 'G/0', ' 1/0', null, 42])
      expect(parseLsn(bad), String(bad)).toBeUndefined();
  });

  it('round-trips, with and without a pin', () => {
    const plain: ConsistencyToken = { lsn: 0x70022c8n, pin: undefined };
    expect(encodeToken(plain)).toBe('70022c8');
    expect(decodeToken('70022c8')).toEqual(plain);
    const pinned: ConsistencyToken = { lsn: 0x7002c28n, pin: { replica: 1, epoch: 'hokoxz6i16' } };
    expect(encodeToken(pinned)).toBe('7002c28_1_hokoxz6i16');
    expect(decodeToken(encodeToken(pinned))).toEqual(pinned);
  });

  it('refuses anything a client could make up beyond the format', () => {
    for (const bad of [
      '',
      'G1',
      '70022C8',
      '1'.repeat(17),
      '1_1',
      '1_1_',
      '1_100_abc',
      '1_-1_abc',
      '1_1_ABC',
      '1_1_abc_d',
      '1_1_' + 'a'.repeat(15),
      ' 1',
      '1\n',
    ]) {
      expect(decodeToken(bad), JSON.stringify(bad)).toBeUndefined();
    }
  });

  it('merges what the caller brought: the highest position, the first pin', () => {
    const a = { lsn: 10n, pin: { replica: 0, epoch: 'e1' } };
    const b = { lsn: 20n, pin: undefined };
    expect(mergeTokens([a, b, undefined])).toEqual({ lsn: 20n, pin: a.pin });
    expect(mergeTokens([])).toEqual({ lsn: 0n, pin: undefined });
  });
});

describe('staleness bound from the primary WAL history', () => {
  it('is now minus the last time the primary was at or below the replayed position', () => {
    const h = new WalHistory(10_000);
    expect(h.staleness(100n, 0)).toBe(Infinity); // nothing known yet
    h.add(1000, 100n);
    h.add(1050, 100n); // idle primary: the same position, later
    h.add(1100, 200n);
    h.add(1150, 300n);
    expect(h.staleness(300n, 1160)).toBe(10); // caught up with the last sample
    expect(h.staleness(250n, 1160)).toBe(60); // has everything up to the 1100 sample
    expect(h.staleness(100n, 1160)).toBe(110); // the primary was still at 100 at 1050
    expect(h.staleness(99n, 1160)).toBe(Infinity); // behind everything kept
  });

  it('keeps only keepMs of history, and always the newest sample', () => {
    const h = new WalHistory(100);
    for (let t = 0; t <= 1000; t += 10) h.add(t, BigInt(t));
    expect(h.staleness(850n, 1000)).toBe(Infinity); // older than the history
    expect(h.staleness(950n, 1000)).toBe(50);
    const idle = new WalHistory(100);
    idle.add(0, 5n);
    idle.add(5000, 5n);
    expect(idle.staleness(5n, 5000)).toBe(0);
    expect(idle.latestLsn).toBe(5n);
  });
});

describe('routing a read', () => {
  const replica = (index: number, over: Partial<ReplicaView> = {}): ReplicaView => ({
    name: `replica${index + 1}`,
    index,
    inRotation: true,
    replayLsn: 100n,
    epoch: 'e',
    stalenessMs: 10,
    ...over,
  });
  const first = () => 0;
  const token = (lsn: bigint, pin?: { replica: number; epoch: string }): ConsistencyToken => ({ lsn, pin });

  it('spreads tokenless reads over replicas in rotation and pins the reader', () => {
    let n = 0;
    const rr = (k: number) => n++ % k;
    const rs = [replica(0), replica(1), replica(2, { inRotation: false })];
    const picked = [0, 1, 2, 3].map(() => {
      const r = routeRead(token(0n), rs, 100, rr);
      return r.kind === 'replica' && r.pin ? r.replica.index : -1;
    });
    expect(picked).toEqual([0, 1, 0, 1]);
  });

  it("sends a read to a replica only once it has replayed the caller's token", () => {
    const rs = [replica(0, { replayLsn: 90n }), replica(1, { replayLsn: 150n })];
    expect(routeRead(token(120n), rs, 100, first)).toMatchObject({
      kind: 'replica',
      replica: { index: 1 },
      pin: true,
    });
    // None there yet: wait if one is close enough to catch up within the wait, else the primary.
    expect(routeRead(token(200n), rs, 100, first)).toEqual({ kind: 'wait' });
    const far = rs.map((r) => ({ ...r, stalenessMs: 1000 }));
    expect(routeRead(token(200n), far, 100, first)).toEqual({ kind: 'primary', reason: 'token' });
  });

  it('keeps a pinned reader on its replica, and moves it through the primary when that replica is gone or restarted', () => {
    const rs = [replica(0, { replayLsn: 150n }), replica(1, { replayLsn: 500n })];
    expect(routeRead(token(100n, { replica: 0, epoch: 'e' }), rs, 100, first)).toMatchObject({
      kind: 'replica',
      replica: { index: 0 },
      pin: false,
    });
    // Never straight to the other replica, even one further ahead: what the reader saw on
    // replica 0 is bounded only by the primary's position.
    const down = [replica(0, { inRotation: false }), rs[1]!];
    expect(routeRead(token(100n, { replica: 0, epoch: 'e' }), down, 100, first)).toEqual({
      kind: 'primary',
      reason: 'switch',
    });
    expect(routeRead(token(100n, { replica: 0, epoch: 'old' }), rs, 100, first)).toEqual({
      kind: 'primary',
      reason: 'switch',
    });
    expect(routeRead(token(100n, { replica: 7, epoch: 'e' }), rs, 100, first)).toEqual({
      kind: 'primary',
      reason: 'switch',
    });
    // Pinned but behind the token (it came from the session): wait for that replica, or the primary.
    expect(routeRead(token(200n, { replica: 0, epoch: 'e' }), rs, 100, first)).toEqual({ kind: 'wait' });
  });

  it('reads from the primary when no replica is in rotation', () => {
    const rs = [replica(0, { inRotation: false }), replica(1, { inRotation: false })];
    expect(routeRead(token(0n), rs, 100, first)).toEqual({ kind: 'primary', reason: 'no_replica' });
    expect(routeRead(token(0n), [], 100, first)).toEqual({ kind: 'primary', reason: 'no_replica' });
  });

  it('retries elsewhere only when the replica, not the query, failed', () => {
    const dbError = (code: string) => Object.assign(new pg.DatabaseError('x', 1, 'error'), { code });
    expect(
      replicaUnavailable(Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' })),
    ).toBe(true);
    expect(replicaUnavailable(new Error('Connection terminated unexpectedly'))).toBe(true);
    for (const code of ['57P01', '57P03', '08006', '53300', '40001'])
      expect(replicaUnavailable(dbError(code)), code).toBe(true);
    for (const code of ['42601', '23505', '22P02', '25006'])
      expect(replicaUnavailable(dbError(code)), code).toBe(false);
  });
});

describe('the token cookie', () => {
  const SECRET = 's'.repeat(40);

  async function serve(cookie: string | undefined, act: (c: ConsistencyCookie, log: string[]) => unknown) {
    const app = Fastify();
    const log: string[] = [];
    app.get('/', async (req, reply) => {
      const session = {
        peek: () => ({ userId: 1, createdAt: 0, tokens: { '0': 'ff' } }),
        setToken: async (shard: string, token: string) => void log.push(`session ${shard}=${token}`),
      } as unknown as RequestSession;
      reply.header('set-cookie', 'ladder_sid=abc; Path=/');
      const c = new ConsistencyCookie(req, reply, session, SECRET);
      return { result: await act(c, log) };
    });
    const res = await app.inject({ method: 'GET', url: '/', headers: cookie ? { cookie } : {} });
    await app.close();
    const setCookie = res.headers['set-cookie'];
    return {
      body: res.json<{ result: unknown }>().result,
      cookies: Array.isArray(setCookie) ? setCookie : [setCookie],
      log,
    };
  }

  it('returns what the signed cookie and the loaded session hold', async () => {
    const valid = `${CONSISTENCY_COOKIE}=${sign('0:70022c8_1_abc', SECRET)}`;
    expect((await serve(valid, (c) => c.tokens('0'))).body).toEqual(['70022c8_1_abc', 'ff']);
    expect((await serve(valid, (c) => c.tokens('3'))).body).toEqual([]);
  });

  it('ignores a forged, malformed or oversized cookie', async () => {
    const cases = [
      `${CONSISTENCY_COOKIE}=0:ffffffffffffffff.forged`,
      `${CONSISTENCY_COOKIE}=${sign('0:FFFF', SECRET)}`,
      `${CONSISTENCY_COOKIE}=${sign('0:1~bad entry', SECRET)}`,
      `${CONSISTENCY_COOKIE}=${sign(Array.from({ length: 17 }, (_, i) => `${i}:1`).join('~'), SECRET)}`,
      `${CONSISTENCY_COOKIE}=${sign('0:' + '1'.repeat(600), SECRET)}`,
    ];
    for (const cookie of cases)
      expect((await serve(cookie, (c) => c.tokens('0'))).body, cookie).toEqual(['ff']);
  });

  it('sets one signed HttpOnly SameSite=Lax cookie per response, keeping the others, and the session only when durable', async () => {
    const { cookies, log } = await serve(undefined, (c) => {
      void c.save('0', '10', false);
      return c.save('0', '20_0_e', true);
    });
    expect(cookies).toHaveLength(2);
    expect(cookies[0]).toBe('ladder_sid=abc; Path=/');
    expect(cookies[1]).toMatch(
      new RegExp(
        `^${CONSISTENCY_COOKIE}=0:20_0_e\\.[A-Za-z0-9_-]+; Path=/; Max-Age=86400; HttpOnly; SameSite=Lax$`,
      ),
    );
    expect(log).toEqual(['session 0=20_0_e']);
  });
});

describe('replica settings', () => {
  const env = { LADDER_SECRET: 'x'.repeat(32) };

  it('reads DATABASE_REPLICA_URLS and the tuning variables, keeping URLs out of logs', () => {
    expect(loadServerConfig({}, env).replicas).toMatchObject({
      urls: [],
      pollMs: 200,
      maxLagMs: 5000,
      readTimeoutMs: 2000,
    });
    const c = loadServerConfig(
      {},
      {
        ...env,
        DATABASE_REPLICA_URLS:
          'postgres://u:hunter2hunter2@127.0.0.1:5001/links, postgresql://u:p@127.0.0.1:5002/links',
        DATABASE_REPLICA_POLL_MS: '100',
        DATABASE_REPLICA_MAX_LAG_MS: '2000',
      },
    );
    expect(c.replicas.urls).toHaveLength(2);
    expect(c.replicas).toMatchObject({ pollMs: 100, maxLagMs: 2000 });
    expect(JSON.stringify(c)).not.toContain('hunter2');
  });

  it('names the variable and masks passwords in errors', () => {
    let message = '';
    try {
      loadServerConfig(
        {},
        { ...env, DATABASE_REPLICA_URLS: 'postgres://u:p@h:1/links,mysql://u:hunter2hunter2@h/db' },
      );
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message).toMatch(/^DATABASE_REPLICA_URLS: entry 2, .* is not a Postgres URL\. Fix: /);
    expect(message).not.toContain('hunter2');
    expect(() => loadServerConfig({}, { ...env, DATABASE_REPLICA_URLS: 'postgres://h:1/' })).toThrow(
      /^DATABASE_REPLICA_URLS: /,
    );
    expect(() =>
      loadServerConfig({}, { ...env, DATABASE_REPLICA_URLS: Array(9).fill('postgres://h:1/d').join(',') }),
    ).toThrow(/at most 8/);
    expect(() => loadServerConfig({}, { ...env, DATABASE_REPLICA_POLL_MS: '0' })).toThrow(
      /^DATABASE_REPLICA_POLL_MS: /,
    );
  });
});
