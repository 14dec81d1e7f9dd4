// `ladder chaos kill NODE` keeps the node down for a while before the supervisor restarts it
// (--down S, 5 s unless told): a web server restarts in under a second, faster than
// monitoring scrapes it, and an outage nobody can see is no test of the monitoring. The
// command leaves a note naming the node and the pid it killed; the supervisor reads it when
// that process dies and waits until the note's time before its restart.
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { upDir } from './up-state.ts';

/** How long a node killed by `ladder chaos kill` stays down unless --down says otherwise. */
export const DEFAULT_CHAOS_DOWN_S = 5;
export const MAX_CHAOS_DOWN_S = 600;

interface Hold {
  node: string;
  pid: number;
  /** Epoch ms before which the node is not restarted. */
  until: number;
}

function holdFile(stateDir: string): string {
  return path.join(upDir(stateDir), 'chaos-hold.json');
}

export function writeChaosHold(stateDir: string, node: string, pid: number, downMs: number): void {
  const file = holdFile(stateDir);
  let holds: Hold[] = [];
  try {
    holds = (JSON.parse(readFileSync(file, 'utf8')) as Hold[]).filter((h) => h.until > Date.now() && h.node !== node);
  } catch {
    /* none yet */
  }
  holds.push({ node, pid, until: Date.now() + downMs });
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, JSON.stringify(holds));
  renameSync(tmp, file);
}

/** Milliseconds the node whose process `pid` just died must stay down, 0 when no chaos kill asked for it. */
export function chaosHoldMs(stateDir: string, node: string, pid: number | undefined): number {
  try {
    const holds = JSON.parse(readFileSync(holdFile(stateDir), 'utf8')) as Hold[];
    const h = holds.find((x) => x.node === node && x.pid === pid);
    return h ? Math.max(0, h.until - Date.now()) : 0;
  } catch {
    return 0;
  }
}
