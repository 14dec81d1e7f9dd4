// The entry files the launcher runs: it starts its own processes (the supervisor, web
// servers, migrations) by running them, never by importing the code those processes run.
import { fileURLToPath } from 'node:url';

/** The `ladder` command (checks that dist/ is fresh, then runs the compiled CLI). */
export const LADDER_BIN = fileURLToPath(new URL('../../bin/ladder.mjs', import.meta.url));

/**
 * One web server, compiled: `node dist/server/web-main.js __web`. Run directly, so a web
 * process is plain node on a compiled file, with no build check per start (the `ladder`
 * command that launched the topology checked once). `__web` stays on the command line as
 * the marker `ladder down` and `ladder start` recognise a web server's pid by.
 */
export const WEB_ENTRY = fileURLToPath(new URL('../../dist/server/web-main.js', import.meta.url));

/** A worker and the relay of rung 9, compiled, run the same way (`__worker`, `__relay` mark their pids). */
export const WORKER_ENTRY = fileURLToPath(new URL('../../dist/server/worker-main.js', import.meta.url));
export const RELAY_ENTRY = fileURLToPath(new URL('../../dist/server/relay-main.js', import.meta.url));
