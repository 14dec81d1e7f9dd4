#!/usr/bin/env node
// Entry point of the `ladder` command: runs the compiled CLI in dist/ with plain node.
// When src/ is newer than the build (a fresh clone, an edit) it builds first, in one line
// on stderr. The processes ladder starts inherit LADDER_BUILD_CHECKED and skip the check:
// their parent has just made sure, and a web server must not start tsc.
if (process.env.LADDER_BUILD_CHECKED !== '1') {
  const { ensureFreshBuild } = await import('../scripts/build.mjs');
  try {
    ensureFreshBuild();
  } catch (err) {
    process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  }
  process.env.LADDER_BUILD_CHECKED = '1';
}
const { main } = await import('../dist/cli/main.js');
process.exitCode = await main(process.argv.slice(2));
