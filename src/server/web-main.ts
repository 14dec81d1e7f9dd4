// Entry of one web server of a topology (`ladder __web`): settings come from the
// environment the supervisor sets (DATABASE_URL, PORT, LADDER_SECRET, REDIS_URL, ...).
import { loadServerConfig } from '../kit/config.ts';
import { untilSignal } from '../kit/process/signals.ts';
import { startWebProcess } from './web-process.ts';

export async function runWeb(): Promise<number> {
  const url = process.env.DATABASE_URL;
  if (!url) throw new Error('DATABASE_URL is required for a web server of a topology');
  const web = await startWebProcess(loadServerConfig(), url);
  const say = (m: string) => process.stderr.write(`${process.env.LADDER_NODE ?? 'web'}: ${m}\n`);
  say(`serving at ${web.url}`);
  await untilSignal(() => web.stop(), say);
  return 0;
}
