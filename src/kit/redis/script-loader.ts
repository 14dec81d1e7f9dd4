// The one way the kit runs Lua inside Redis. A script is a file `<name>-<n>.lua` next to the
// code that runs it, n being how many of its arguments are keys (KEYS[1..n]); every key a
// script touches is one of those, so that Redis Cluster (or ElastiCache in cluster mode) can
// route the call and refuse keys of two slots, instead of the script reaching keys it built
// itself. Scripts are bound to a connection with ioredis's defineCommand, which sends EVALSHA
// and, when Redis answers NOSCRIPT (restarted, or SCRIPT FLUSH), the source once more: no
// caller retries by hand.
//
// Files are found relative to the module that loads them (import.meta.url), so the same code
// runs from src/ and from dist/ (the build copies every non-.ts file).
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Redis } from 'ioredis';

export interface LuaScript {
  /** The file's name without the key count, e.g. `lookup` for lookup-6.lua. */
  readonly name: string;
  readonly numberOfKeys: number;
  readonly lua: string;
}

export type ScriptArg = string | number;

/** Runs a bound script: exactly `numberOfKeys` keys, then the arguments. */
export type RunScript = (keys: readonly string[], args?: readonly ScriptArg[]) => Promise<unknown>;

const FILE_NAME = /^([a-z][a-z0-9]*(?:-[a-z0-9]+)*?)-(\d+)\.lua$/;

/** Reads a script file, e.g. `loadLuaScript(new URL('./lua/lookup-6.lua', import.meta.url))`. */
export function loadLuaScript(url: URL): LuaScript {
  const file = basename(fileURLToPath(url));
  const m = FILE_NAME.exec(file);
  if (!m) throw new Error(`${file}: name a Redis script <name>-<number of KEYS>.lua (e.g. lease-acquire-2.lua)`);
  return { name: m[1]!, numberOfKeys: Number(m[2]), lua: readFileSync(url, 'utf8') };
}

type Bound = (...args: ScriptArg[]) => Promise<unknown>;

/**
 * Defines the script on this client (once per client and script) and returns how to run it.
 * A wrong number of keys is refused here: Redis would silently take an argument for a key.
 */
export function bindScript(client: Redis, script: LuaScript): RunScript {
  // A prefix of our own, so that a script can never shadow one of the client's commands.
  const command = `ladder_${script.name.replaceAll('-', '_')}_${script.numberOfKeys}`;
  const methods = client as unknown as Record<string, Bound | undefined>;
  if (typeof methods[command] !== 'function') {
    client.defineCommand(command, { numberOfKeys: script.numberOfKeys, lua: script.lua });
  }
  const run = methods[command]!.bind(client);
  return (keys, args = []) => {
    if (keys.length !== script.numberOfKeys) {
      return Promise.reject(
        new Error(`Redis script ${script.name} takes ${script.numberOfKeys} keys, was given ${keys.length}`),
      );
    }
    return run(...keys, ...args);
  };
}
