// What the web servers of a launched topology counted about their database use (their
// /metrics, read by BenchTopology.databaseReads before and after a phase).

/**
 * What the web servers counted between two BenchTopology.databaseReads calls: plain reads
 * served by the primary and by replicas (statements: a batch of lookups is one), every
 * statement sent, the redirects answered, and each replica's plain reads.
 */
export interface ReadCounts {
  primary: number;
  replica: number;
  statements: number;
  redirects: number;
  byReplica: Record<string, number>;
}

export const NO_READS: ReadCounts = { primary: 0, replica: 0, statements: 0, redirects: 0, byReplica: {} };

export function readsBetween(before: ReadCounts, after: ReadCounts): ReadCounts {
  return addReads(after, before, -1);
}

export function addReads(a: ReadCounts, b: ReadCounts, sign = 1): ReadCounts {
  const byReplica: Record<string, number> = { ...a.byReplica };
  for (const [r, n] of Object.entries(b.byReplica)) byReplica[r] = (byReplica[r] ?? 0) + sign * n;
  return {
    primary: a.primary + sign * b.primary,
    replica: a.replica + sign * b.replica,
    statements: a.statements + sign * b.statements,
    redirects: a.redirects + sign * b.redirects,
    byReplica,
  };
}

/** Database statements per redirect answered (batched lookups make it less than 1); NaN without redirects. */
export function statementsPerRedirect(r: ReadCounts): number {
  return r.redirects > 0 ? r.statements / r.redirects : NaN;
}

/** Each replica's share of the reads replicas served (0 to 1). */
export function replicaShares(r: ReadCounts): Record<string, number> {
  const total = Object.values(r.byReplica).reduce((a, n) => a + n, 0);
  return Object.fromEntries(Object.entries(r.byReplica).map(([name, n]) => [name, total > 0 ? n / total : NaN]));
}

/** The primary's share of plain reads (0 to 1); NaN when there were none. */
export function primaryShare(r: ReadCounts): number {
  const total = r.primary + r.replica;
  return total > 0 ? r.primary / total : NaN;
}
