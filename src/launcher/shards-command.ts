// `ladder shards [--json]`: the running topology's shard map, from its catalog, with each
// cluster's logical shards (as ranges) and its rows (links), counted on the cluster's primary.
// JSON: {version, logicalShards, clusters:[{name, logical:[[from,to],...], rows}]}.
import { existsSync, readFileSync } from 'node:fs';
import pg from 'pg';
import { LadderFailure } from '../kit/errors.ts';
import { loadShardMap, rangesOf } from '../kit/db/shard-map.ts';
import { shardsFilePath, type ShardsFile } from './shard-plan.ts';

export interface ShardsReport {
  version: number;
  logicalShards: number;
  clusters: { name: string; logical: [number, number][]; rows: number }[];
}

async function withClient<T>(url: string, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5000 });
  client.on('error', () => undefined); // a lost connection also fails the statement, which is thrown
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

export function readShardsFile(stateDir: string): ShardsFile {
  const file = shardsFilePath(stateDir);
  if (!existsSync(file)) throw new LadderFailure('NOT_RUNNING', 'no sharded topology here: start one with `ladder up --rung 10`');
  return JSON.parse(readFileSync(file, 'utf8')) as ShardsFile;
}

export async function shardsReport(stateDir: string): Promise<ShardsReport> {
  const f = readShardsFile(stateDir);
  const map = await withClient(f.catalog, (c) => loadShardMap(c));
  if (!map) throw new LadderFailure('NOT_RUNNING', 'the catalog holds no shard map yet');
  const ranges = rangesOf(map);
  const clusters = await Promise.all(
    f.clusters.map(async (c) => ({
      name: c.name,
      logical: ranges.get(c.name) ?? [],
      rows: await withClient(c.primary, async (client) => Number((await client.query<{ n: string }>('select count(*) as n from links')).rows[0]!.n)),
    })),
  );
  return { version: map.version, logicalShards: map.logicalShards, clusters };
}

export async function shardsCommand(stateDir: string, json: boolean): Promise<number> {
  const r = await shardsReport(stateDir);
  if (json) {
    process.stdout.write(JSON.stringify(r) + '\n');
    return 0;
  }
  process.stdout.write(`shard map version ${r.version}, ${r.logicalShards} logical shards\n`);
  for (const c of r.clusters) {
    const ranges = c.logical.map(([a, b]) => (a === b ? `${a}` : `${a}-${b}`)).join(',');
    process.stdout.write(`  ${c.name.padEnd(10)} rows ${String(c.rows).padStart(9)}  logical ${ranges}\n`);
  }
  return 0;
}
