// Entry of one web server (`ladder __web`, and what the launcher runs directly:
// `node dist/server/web-main.js __web`, the compiled file, no loader, no build check).
// Settings come from the environment the launcher sets (DATABASE_URL, PORT, LADDER_SECRET,
// REDIS_URL, ...).
import { pathToFileURL } from 'node:url';
import { ConfigError, failureCode } from '../kit/errors.ts';
import { loadServerConfig } from '../kit/config.ts';
import { untilSignal } from '../kit/process/signals.ts';
import { startWebProcess } from './web-process.ts';

export async function runWeb(): Promise<number> {
  const url = process.env.DATABASE_URL;
  if (!url) throw new ConfigError('DATABASE_URL', 'is not set', 'a web server of a topology needs the database URL in DATABASE_URL');
  const web = await startWebProcess(loadServerConfig(), url);
  const say = (m: string) => process.stderr.write(`${process.env.LADDER_NODE ?? 'web'}: ${m}\n`);
  say(`serving at ${web.url}`);
  await untilSignal(() => web.stop(), say);
  return 0;
}

// Run as a program (the launcher's command line), not imported.
const entry = process.argv[1];
if (entry !== undefined && import.meta.url === pathToFileURL(entry).href) {
  try {
    process.exitCode = await runWeb();
  } catch (err) {
    const code = failureCode(err);
    process.stderr.write(`${process.env.LADDER_NODE ?? 'web'}: ${code ? `${code}: ` : ''}${(err as Error).message ?? String(err)}\n`);
    process.exitCode = 1;
  }
}
