// Accounts: signup, login (rotates the session id), logout (destroys it server-side), me.
import type { FastifyInstance } from 'fastify';
import { dbFor } from '../../kit/db/database.ts';
import { LadderError } from '../../kit/errors.ts';
import { emailField, objectBody, stringField } from '../domain/input.ts';
import { findUserByEmail, findUserById, insertUser } from '../domain/links-repo.ts';
import { MAX_PASSWORD, MIN_PASSWORD, hashPassword, verifyPassword } from '../domain/passwords.ts';
import { loginSchema, signupSchema } from './schemas.ts';

const userJson = (u: { id: string; email: string }) => ({ id: Number(u.id), email: u.email });

export async function authRoutes(app: FastifyInstance): Promise<void> {
  app.post('/api/signup', { schema: signupSchema, config: { rateLimit: 'signup' } }, async (req, reply) => {
    const body = objectBody(req.body, ['email', 'password']);
    const email = emailField(body);
    const password = stringField(body, 'password', MIN_PASSWORD, MAX_PASSWORD);
    const hash = await hashPassword(password);
    // The account and its session stand or fall together: if the session store is down
    // (503), the insert rolls back and a retry does not meet EMAIL_TAKEN.
    const user = await dbFor(req.db, 'directory').tx(async (tx) => {
      const created = await insertUser(tx, email, hash);
      if (created) await req.session.start(Number(created.id));
      return created;
    });
    if (!user) throw new LadderError('EMAIL_TAKEN');
    return reply.status(201).send({ user: userJson(user) });
  });

  app.post('/api/login', { schema: loginSchema, config: { rateLimit: 'login' } }, async (req) => {
    const body = objectBody(req.body, ['email', 'password']);
    const email = emailField(body);
    const password = stringField(body, 'password', 1, MAX_PASSWORD);
    const user = await findUserByEmail(req.db, email);
    if (!(await verifyPassword(user?.password_hash, password)) || !user) throw new LadderError('INVALID_CREDENTIALS');
    await req.session.start(Number(user.id));
    return { user: userJson(user) };
  });

  app.post('/api/logout', async (req, reply) => {
    await req.session.destroy();
    return reply.status(204).send();
  });

  app.get('/api/me', { config: { auth: true } }, async (req) => {
    const userId = await req.session.requireUser();
    const user = await findUserById(req.db, userId);
    if (!user) {
      await req.session.destroy();
      throw new LadderError('UNAUTHENTICATED');
    }
    return { user: userJson(user) };
  });
}
