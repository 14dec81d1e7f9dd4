// Warming a new web server before the balancer sends it traffic: its first requests run
// cold (V8 has compiled nothing yet, the pool has no connection, the route caches are empty)
// and would land on users as a latency spike right when the tier is already under load.
// Measured with `ladder bench autoscale` at 0.15 core: a server added after 60 warm-up
// requests, handed half of 2,163 req/s, held requests 3 to 4 s for its first seconds. So the
// warm-up is a few seconds of load on its own port, from several connections at once (the
// pool's connections and the code paths of concurrent requests): readiness, liveness and
// the redirect route, with a code no link has (the same lookup as a real redirect,
// answered with the 404 page, and no click counted on anyone's link).

/** How long the warm-up loads the server: about 2,000 requests at 0.15 core. */
const WARM_MS = 2500;
const CONCURRENCY = 8;
const TIMEOUT_MS = 5000;
const PATHS = ['/readyz', '/zz-warm-up', '/zz-warm-up?warm=1', '/healthz'];

/** Loads `url` (the server's own address) for `ms`; resolves when done, whatever it answered. */
export async function warmServer(url: string, ms = WARM_MS): Promise<void> {
  const until = Date.now() + ms;
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async (_, k) => {
      for (let i = k; Date.now() < until; i++) {
        try {
          const res = await fetch(`${url}${PATHS[i % PATHS.length]}`, { signal: AbortSignal.timeout(TIMEOUT_MS) });
          await res.arrayBuffer();
        } catch {
          /* warming is best effort: readiness was checked before */
        }
      }
    }),
  );
}
