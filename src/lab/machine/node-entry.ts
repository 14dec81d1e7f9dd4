// How to start one of our entry files as its own node process: always the compiled file in
// dist/, run by plain node, whether the caller itself runs from dist/ (ladder) or from the
// TypeScript sources (vitest). src/lab/ and dist/lab/ sit at the same depth, so one relative
// path reaches dist/lab/ from both. `ladder` (bin/ladder.mjs) keeps dist/ fresh.
import { fileURLToPath } from 'node:url';

/** The lab's folder (src/lab/ or dist/lab/), which entries are named relative to. */
const LAB = new URL('../', import.meta.url);
/** The compiled lab, whichever tree this module runs from. */
const DIST_LAB = new URL('../../dist/lab/', LAB);

/** Command and arguments that run `entry` (a path relative to src/lab/, e.g. driver/load-driver-main.ts) under node, compiled. */
export function nodeEntry(entry: string): { command: string; args: string[] } {
  const compiled = entry.replace(/^\.\//, '').replace(/\.ts$/, '.js');
  return { command: process.execPath, args: [fileURLToPath(new URL(compiled, DIST_LAB))] };
}

/** bin/ladder.mjs, the same entry `npm start` uses. */
export const LADDER_BIN = fileURLToPath(new URL('../../bin/ladder.mjs', LAB));
