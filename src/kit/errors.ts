// The one catalogue of error codes Ladder returns. Every HTTP error body is
// {"error":{"code","message"}} and its status comes from this table, in one place.

export const ErrorCodes = {
  BAD_JSON: { status: 400, message: 'The request body is not valid JSON.' },
  VALIDATION_FAILED: { status: 400, message: 'The request is invalid.' },
  INVALID_URL: { status: 400, message: 'The URL is not allowed.' },
  INVALID_CODE: { status: 400, message: 'The code is not allowed.' },
  UNAUTHENTICATED: { status: 401, message: 'You need to log in.' },
  INVALID_CREDENTIALS: { status: 401, message: 'Email or password is wrong.' },
  FORBIDDEN_ORIGIN: { status: 403, message: 'Cross-site request refused.' },
  NOT_FOUND: { status: 404, message: 'Not found.' },
  METHOD_NOT_ALLOWED: { status: 405, message: 'Method not allowed.' },
  REQUEST_TIMEOUT: { status: 408, message: 'The request took too long to arrive.' },
  EMAIL_TAKEN: { status: 409, message: 'An account with this email already exists.' },
  CODE_TAKEN: { status: 409, message: 'This code is already taken.' },
  PAYLOAD_TOO_LARGE: { status: 413, message: 'The request body is too large.' },
  UNSUPPORTED_MEDIA_TYPE: { status: 415, message: 'Send JSON with Content-Type: application/json.' },
  RATE_LIMITED: { status: 429, message: 'Too many requests; retry later.' },
  INTERNAL: { status: 500, message: 'Internal error.' },
  SERVICE_UNAVAILABLE: { status: 503, message: 'A dependency is unavailable; retry later.' },
} as const satisfies Record<string, { status: number; message: string }>;

export type ErrorCode = keyof typeof ErrorCodes;

/** An error that knows its HTTP response. Keeps the underlying cause for logs. */
export class LadderError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly headers: Record<string, string>;
  readonly details: Record<string, unknown> | undefined;

  constructor(
    code: ErrorCode,
    message?: string,
    opts: { cause?: unknown; headers?: Record<string, string>; details?: Record<string, unknown> } = {},
  ) {
    super(message ?? ErrorCodes[code].message, { cause: opts.cause });
    this.name = 'LadderError';
    this.code = code;
    this.status = ErrorCodes[code].status;
    this.headers = opts.headers ?? {};
    this.details = opts.details;
  }

  toBody(): { error: { code: ErrorCode; message: string; details?: Record<string, unknown> } } {
    return { error: { code: this.code, message: this.message, ...(this.details ? { details: this.details } : {}) } };
  }
}

/**
 * The catalogue of failures outside HTTP: settings, the launcher, the lab. Each has a stable
 * code that scripts may match (the CLI prints `ladder: CODE: message` and exits 1); the
 * message says what happened and how to fix it.
 */
export const FailureCodes = {
  CONFIG_INVALID: 'A setting or flag is invalid.',
  BINARY_MISSING: 'A program this rung needs is not installed.',
  STATE_LOCKED: 'Another ladder process is using this state folder.',
  COMPONENT_FAILED: 'A component did not start or did not become ready.',
  MIGRATION_FAILED: 'The database migrations could not be applied.',
  BENCH_FAILED: 'A benchmark could not run.',
  NOT_RUNNING: 'No topology is running from this state folder.',
  NOT_MONITORED: 'The running topology has no monitoring (Prometheus, Alertmanager, the dashboard).',
  BROKER_UNAVAILABLE: 'The message broker of the running topology did not answer.',
} as const satisfies Record<string, string>;

export type FailureCode = keyof typeof FailureCodes;

/** A failure outside HTTP, with its catalogue code; keeps the underlying cause. */
export class LadderFailure extends Error {
  constructor(
    readonly code: FailureCode,
    message?: string,
    opts: { cause?: unknown } = {},
  ) {
    super(message ?? FailureCodes[code], { cause: opts.cause });
    this.name = 'LadderFailure';
  }
}

/** The catalogue code of a failure, if it has one (a LadderFailure or a ConfigError). */
export function failureCode(err: unknown): FailureCode | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && Object.hasOwn(FailureCodes, code) ? (code as FailureCode) : undefined;
}

// Configuration and topology errors name the field and the fix. The class lives with the
// topology (which imports nothing of ours) so both it and the kit's settings can throw it.
export { ConfigError } from '../topology/config-error.ts';
