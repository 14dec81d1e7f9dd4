// The `ladder` command's entry file: the launcher starts its own processes (the supervisor,
// web servers, migrations) by running it, never by importing the code those processes run.
import { fileURLToPath } from 'node:url';

export const LADDER_BIN = fileURLToPath(new URL('../../bin/ladder.mjs', import.meta.url));
