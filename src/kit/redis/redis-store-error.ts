// The error a Redis-backed store throws when a command fails (Redis down, timed out, or an
// error reply). ioredis errors can carry the command and its arguments (a key naming a
// session id, HELLO's password), and loggers serialize every field of an error and its
// cause; so a store rethrows this instead: the operation, the message with the given
// secrets masked, and the code. The original is deliberately not kept as `cause`.
export class RedisStoreError extends Error {
  readonly code: string | undefined;

  constructor(operation: string, err: unknown, secrets: readonly string[] = []) {
    let message = err instanceof Error ? err.message : String(err);
    for (const s of secrets) if (s) message = message.split(s).join('[redacted]');
    super(`Redis ${operation} failed: ${message.slice(0, 300)}`);
    this.name = 'RedisStoreError';
    const code = (err as { code?: unknown } | undefined)?.code;
    this.code = typeof code === 'string' ? code : undefined;
  }
}
