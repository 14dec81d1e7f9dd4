// The benchmark's data set: one user owning N links whose codes and URLs follow from their
// index alone, so the load driver computes any code without asking the database, and the
// seed is one `insert ... select from generate_series` per chunk instead of N round trips.
// The code and URL formulas exist twice (SQL for the seed, TypeScript for the driver);
// test/unit/lab-bench-links.test.ts checks that they agree.

/** What the seed needs from a connection: node-postgres clients and PGlite both fit. */
export interface SqlClient {
  query(sql: string, params?: unknown[]): Promise<unknown>;
}

export const MAX_LINKS = 10_000_000;
const CHUNK = 250_000;

/** Code of link i (0-based): 'b' and 8 digits, inside the app's [A-Za-z0-9_-]{3,32}. */
export function benchCode(i: number): string {
  return 'b' + String(i).padStart(8, '0');
}

export function benchUrl(i: number): string {
  return `https://example.com/articles/${i}?utm_source=ladder-bench`;
}

export const CODE_SQL = `'b' || lpad(g::text, 8, '0')`;
export const URL_SQL = `'https://example.com/articles/' || g || '?utm_source=ladder-bench'`;

function gcd(a: number, b: number): number {
  while (b) [a, b] = [b, a % b];
  return a;
}

/**
 * Maps popularity rank to link index with a fixed permutation (multiplication by a number
 * coprime to n), so the hottest links are scattered over the table and its index as they
 * would be in life, not packed into the first pages.
 */
export function rankToIndex(n: number): (rank: number) => number {
  let p = 1_000_003;
  while (gcd(p, n) !== 1) p += 2;
  // rank * p stays below 2^53 for n <= MAX_LINKS, so the arithmetic is exact.
  return (rank) => (rank * p) % n;
}

/** Inserts the owner and `n` links into an empty, migrated database. */
export async function seedLinks(db: SqlClient, n: number, progress?: (done: number) => void): Promise<void> {
  if (!Number.isInteger(n) || n < 1 || n > MAX_LINKS) throw new RangeError(`links must be 1..${MAX_LINKS}, got ${n}`);
  const owner = (await db.query(
    `insert into users (email, password_hash) values ('bench@example.invalid', 'not-a-login') returning id`,
  )) as { rows: { id: string | number }[] };
  const ownerId = owner.rows[0]!.id;
  for (let from = 0; from < n; from += CHUNK) {
    const to = Math.min(n, from + CHUNK) - 1;
    await db.query(
      `insert into links (code, url, owner_id) select ${CODE_SQL}, ${URL_SQL}, $1 from generate_series($2::int, $3::int) g`,
      [ownerId, from, to],
    );
    progress?.(to + 1);
  }
  // Fresh statistics and a set visibility map, as a table that has lived a while would have.
  await db.query('vacuum analyze links');
  await db.query('vacuum analyze users');
}
