// Route schemas (Fastify's JSON-schema validation) report failures as Ajv errors; this maps
// them onto the catalogue, so a schema gives exactly the code and status the documented
// bad-input table promises: a body or query of the wrong shape is 400 VALIDATION_FAILED
// naming the field, and a path parameter that cannot name anything is a 404, as a
// well-formed but unknown one is (a probe learns nothing from the difference).
import type { FastifySchemaValidationError } from 'fastify';
import { LadderError } from '../errors.ts';

/** Where a failure was found (Fastify's dataVar). */
type SchemaErrorDataVar = 'body' | 'headers' | 'params' | 'querystring';

const MAX_FIELD = 40;

/** The top-level field an error is about: `/email` or a missing/unknown property's name. */
function fieldOf(e: FastifySchemaValidationError): string | undefined {
  const params = e.params as { missingProperty?: unknown; additionalProperty?: unknown };
  const named = params.missingProperty ?? params.additionalProperty;
  if (typeof named === 'string') return named.slice(0, MAX_FIELD);
  const path = e.instancePath.split('/')[1];
  return path ? path.replace(/~1/g, '/').replace(/~0/g, '~').slice(0, MAX_FIELD) : undefined;
}

function messageOf(e: FastifySchemaValidationError, field: string | undefined, where: SchemaErrorDataVar): string {
  const params = e.params as { limit?: unknown };
  switch (e.keyword) {
    case 'required':
      return `${field} is required.`;
    case 'additionalProperties':
      return `Unknown field "${field}".`;
    case 'type':
      return field ? `${field} must be a ${String((e.params as { type?: unknown }).type)}.` : where === 'body' ? 'The body must be a JSON object.' : `The ${where} is invalid.`;
    case 'minLength':
    case 'maxLength':
      return `${field} must be ${e.keyword === 'minLength' ? 'at least' : 'at most'} ${String(params.limit)} characters.`;
    default:
      return field ? `${field} is not valid.` : `The ${where} is invalid.`;
  }
}

export function schemaError(errors: FastifySchemaValidationError[], where: SchemaErrorDataVar): Error {
  if (where === 'params') return new LadderError('NOT_FOUND');
  const first = errors[0];
  if (!first) return new LadderError('VALIDATION_FAILED');
  const field = fieldOf(first);
  return new LadderError('VALIDATION_FAILED', messageOf(first, field, where), field ? { details: { field } } : {});
}
