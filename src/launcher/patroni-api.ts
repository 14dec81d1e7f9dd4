// Patroni's REST API as the launcher reads it: which node leads now. GET /primary answers
// 200 only on the node that holds the leader key (and has not let it expire: a leader frozen
// past its ttl answers 503 when it wakes, before it has demoted itself), and every health
// endpoint answers with the node's status document.

export interface PatroniStatus {
  /** Holds the leader key now (GET /primary answered 200). */
  leader: boolean;
  /** Postgres' own view: 'master' / 'primary' or 'replica' (and 'uninitialized', ...). */
  role: string;
  state: string;
  timeline: number | undefined;
}

/** The node's status, or undefined when its API does not answer within timeoutMs. */
export async function patroniStatus(apiUrl: string, timeoutMs = 1000): Promise<PatroniStatus | undefined> {
  try {
    const res = await fetch(`${apiUrl}/primary`, { signal: AbortSignal.timeout(timeoutMs) });
    const body = (await res.json()) as { role?: unknown; state?: unknown; timeline?: unknown };
    return {
      leader: res.status === 200,
      role: typeof body.role === 'string' ? body.role : 'unknown',
      state: typeof body.state === 'string' ? body.state : 'unknown',
      timeline: typeof body.timeline === 'number' ? body.timeline : undefined,
    };
  } catch {
    return undefined; // not answering: down, frozen, or starting
  }
}

/** True when the node's Postgres runs and Patroni is happy with it (GET /health 200). */
export async function patroniHealthy(apiUrl: string, timeoutMs = 1000): Promise<boolean> {
  try {
    const res = await fetch(`${apiUrl}/health`, { signal: AbortSignal.timeout(timeoutMs) });
    await res.arrayBuffer();
    return res.ok;
  } catch {
    return false;
  }
}

/** The index of the node that leads among apiUrls, if exactly one says so. */
export async function findLeader(apiUrls: readonly string[], timeoutMs = 1000): Promise<number | undefined> {
  const statuses = await Promise.all(apiUrls.map((u) => patroniStatus(u, timeoutMs)));
  const leaders = statuses.flatMap((s, i) => (s?.leader ? [i] : []));
  return leaders.length === 1 ? leaders[0] : undefined;
}
