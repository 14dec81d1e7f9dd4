// The shapes of the API's requests, as Fastify JSON schemas: what a body, path or query
// may hold. They check shape only (types, sizes, known fields); meaning (is this URL
// allowed, is this code free) stays in the domain rules, which also run, so the errors are
// the catalogue's in either case (kit/http/schema-errors.ts maps schema failures).
import { CODE_PATTERN } from '../domain/codes.ts';
import { MAX_PASSWORD, MIN_PASSWORD } from '../domain/passwords.ts';

const email = { type: 'string', minLength: 3, maxLength: 254 } as const;

export const signupSchema = {
  body: {
    type: 'object',
    required: ['email', 'password'],
    additionalProperties: false,
    properties: { email, password: { type: 'string', minLength: MIN_PASSWORD, maxLength: MAX_PASSWORD } },
  },
} as const;

export const loginSchema = {
  body: {
    type: 'object',
    required: ['email', 'password'],
    additionalProperties: false,
    properties: { email, password: { type: 'string', minLength: 1, maxLength: MAX_PASSWORD } },
  },
} as const;

/** `url` and `code` may be of any type here: a wrong one is INVALID_URL / INVALID_CODE, from the domain rules. */
export const createLinkSchema = {
  body: { type: 'object', required: ['url'], additionalProperties: false, properties: { url: {}, code: {} } },
} as const;

export const codeParams = {
  type: 'object',
  required: ['code'],
  properties: { code: { type: 'string', pattern: CODE_PATTERN.source } },
} as const;

export const linkSchema = { params: codeParams } as const;

export const editLinkSchema = {
  params: codeParams,
  body: { type: 'object', required: ['url'], additionalProperties: false, properties: { url: {} } },
} as const;

/** Other query parameters (tracking tags, cache busters) are ignored, as before. */
export const listLinksSchema = {
  querystring: {
    type: 'object',
    properties: {
      limit: { type: 'string', pattern: '^[0-9]{0,3}$' },
      cursor: { type: 'string', maxLength: 100, pattern: '^[A-Za-z0-9_-]*$' },
    },
  },
} as const;
