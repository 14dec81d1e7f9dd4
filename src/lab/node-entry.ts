// How to start one of our entry files as its own node process: always the compiled file in
// dist/, run by plain node, whether the caller itself runs from dist/ (ladder) or from the
// TypeScript sources (vitest). src/lab/ and dist/lab/ sit at the same depth, so one relative
// path reaches dist/lab/ from both. `ladder` (bin/ladder.mjs) keeps dist/ fresh.
import { fileURLToPath } from 'node:url';

/** Command and arguments that run `entry` (a path relative to src/lab/, e.g. './x.ts') under node. */
export function nodeEntry(entry: string): { command: string; args: string[] } {
  const compiled = entry.replace(/\.ts$/, '.js');
  const file = fileURLToPath(new URL(`../../dist/lab/${compiled}`, import.meta.url));
  return { command: process.execPath, args: [file] };
}

/** bin/ladder.mjs, the same entry `npm start` uses. */
export const LADDER_BIN = fileURLToPath(new URL('../../bin/ladder.mjs', import.meta.url));
