// The candidates of the broker comparison, by name (the comparison and its child consumer).
import { bullmq, bullmqPostgres } from './bullmq-candidate.ts';
import type { Candidate } from './candidate.ts';
import { jetstream } from './jetstream-candidate.ts';
import { postgresAsyncCommit, postgresQueue } from './postgres-candidate.ts';

export const CANDIDATES: readonly Candidate[] = [bullmq, jetstream, postgresQueue, postgresAsyncCommit, bullmqPostgres];

export function candidateNamed(name: string): Candidate {
  const c = CANDIDATES.find((x) => x.name === name);
  if (!c) throw new Error(`unknown broker ${JSON.stringify(name)}; known: ${CANDIDATES.map((x) => x.name).join(', ')}`);
  return c;
}
