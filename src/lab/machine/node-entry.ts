// How to start one of our TypeScript entry files as its own node process. There is no
// build step, so the child loads tsx the way bin/ladder.mjs does; the loader is named by
// absolute URL so the child may run from any folder.
import { createRequire } from 'node:module';
import { fileURLToPath, pathToFileURL } from 'node:url';

const require = createRequire(import.meta.url);

/** The lab's folder (src/lab/), which entries are named relative to. */
const LAB = new URL('../', import.meta.url);

/** Command and arguments that run `entry` (a path relative to src/lab/, e.g. driver/load-driver-main.ts) under node. */
export function nodeEntry(entry: string): { command: string; args: string[] } {
  const loader = pathToFileURL(require.resolve('tsx')).href;
  const file = fileURLToPath(new URL(entry, LAB));
  return { command: process.execPath, args: ['--import', loader, file] };
}

/** bin/ladder.mjs, the same entry `npm start` uses. */
export const LADDER_BIN = fileURLToPath(new URL('../../bin/ladder.mjs', LAB));
