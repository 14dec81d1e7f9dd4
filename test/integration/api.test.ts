import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Client, startTestServer, uniqueEmail, type TestServer } from '../support/app.ts';

let server: TestServer;
beforeAll(async () => {
  server = await startTestServer();
});
afterAll(async () => server.close());

describe('accounts', () => {
  it('signs up, reads me, logs out, logs in with a new session id', async () => {
    const c = new Client(server.url);
    const email = uniqueEmail();
    const signup = await c.post('/api/signup', { email, password: 'correct horse battery' });
    expect(signup.status).toBe(201);
    expect(signup.json.user).toEqual({ id: expect.any(Number), email });
    const firstCookie = c.cookie;
    expect(firstCookie).toMatch(/^ladder_sid=/);

    const me = await c.get('/api/me');
    expect(me.status).toBe(200);
    expect(me.json.user.email).toBe(email);

    const logout = await c.post('/api/logout');
    expect(logout.status).toBe(204);
    // The old cookie no longer works, even if a client kept it.
    const stale = new Client(server.url);
    stale.cookie = firstCookie;
    expect((await stale.get('/api/me')).status).toBe(401);

    const login = await c.post('/api/login', { email, password: 'correct horse battery' });
    expect(login.status).toBe(200);
    expect(login.json.user.email).toBe(email);
    expect(c.cookie).not.toBe(firstCookie);
    expect((await c.get('/api/me')).status).toBe(200);
  });
});
