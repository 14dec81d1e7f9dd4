// Request keys (rung 9): the balancer gives each client request a random UUID in this header
// before it chooses a server, and an L7 retry resends the request with the same key. A
// redirect's click carries its request's key, and the workers count each key once, so a
// redirect whose first server wrote the click and was killed before its 302 left, and which
// another server then answered, is counted once (docs/operations.md, "Rung 9").
//
// A client that reaches a web server directly can send a key of its own. That can only make
// its own clicks count once: the balancer's keys are random, so no one can name another
// client's key in advance.

export const REQUEST_KEY_HEADER = 'x-ladder-request-key';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** The key in a header's value, lower-cased, if it is one UUID; anything else is no key. */
export function requestKeyOf(value: string | string[] | undefined): string | undefined {
  if (typeof value !== 'string' || value.length !== 36) return undefined;
  const key = value.toLowerCase();
  return isRequestKey(key) ? key : undefined;
}

/** Is this a key as requestKeyOf returns it (checked again wherever one is read back)? */
export const isRequestKey = (key: string): boolean => key.length === 36 && UUID.test(key);
