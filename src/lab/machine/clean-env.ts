// The environment of a process the lab starts: the basics from ours and nothing else, so
// that a REDIS_URL, LOG_REQUESTS, DATABASE_URL or rate-limit setting in the developer's shell
// cannot change what is measured. Every child then runs on its defaults plus what we set.

/** Variables passed through from our environment. */
// LADDER_BUILD_CHECKED: the build was checked once for this run; children skip the check.
// LADDER_WEB_NODE_FLAGS: node flags for launched web servers (a profile of a scenario).
const BASICS = ['PATH', 'HOME', 'TMPDIR', 'LANG', 'TZ', 'LADDER_BUILD_CHECKED', 'LADDER_WEB_NODE_FLAGS'] as const;

export function cleanEnv(vars: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const name of BASICS) if (process.env[name] !== undefined) env[name] = process.env[name];
  return { ...env, ...vars };
}
