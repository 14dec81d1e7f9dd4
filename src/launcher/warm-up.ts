// Warming a new web server before the balancer sends it traffic: its first requests run
// cold (V8 has compiled nothing yet, the pool has no connection, the route caches are empty)
// and would land on users as a latency spike right when the tier is already under load.
// A few requests to its own port, readiness and a redirect lookup, take that hit instead.

/** Requests of each kind; at 0.2 core each takes a few ms once warm. */
const WARM_REQUESTS = 20;
const TIMEOUT_MS = 5000;

/** Sends the warm-up requests to `url` (the server's own address); resolves when done, whatever they answered. */
export async function warmServer(url: string, requests = WARM_REQUESTS): Promise<void> {
  // The redirect route with a code no link has: the same lookup path (cache, database) as a
  // real redirect, answered with the 404 page, and no click counted on anyone's link.
  const paths = ['/readyz', '/healthz', '/zz-warm-up'];
  for (let i = 0; i < requests; i++) {
    await Promise.all(
      paths.map(async (p) => {
        try {
          const res = await fetch(`${url}${p}`, { signal: AbortSignal.timeout(TIMEOUT_MS) });
          await res.arrayBuffer();
        } catch {
          /* warming is best effort: readiness was checked before */
        }
      }),
    );
  }
}
