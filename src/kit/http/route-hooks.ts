// Adds a preValidation hook to one route as it is declared (from an `onRoute` hook), so a
// plugin's per-route check (auth, a rate limit) costs nothing on the routes that do not ask
// for it. `first`: before the route's own hooks; `last`: after them.
import type { FastifyRequest, RouteOptions } from 'fastify';

export function addPreValidation(route: RouteOptions, where: 'first' | 'last', hook: (req: FastifyRequest) => Promise<void>): void {
  const own = route.preValidation === undefined ? [] : Array.isArray(route.preValidation) ? route.preValidation : [route.preValidation];
  route.preValidation = where === 'first' ? [hook, ...own] : [...own, hook];
}
