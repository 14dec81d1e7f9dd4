// Every Lua script the kit runs in Redis keeps its contract: named <name>-<n>.lua with n its
// number of KEYS, a header that says what each KEYS[i] is and what it returns, and every key
// it touches passed in KEYS (never built from ARGV or from a value it read), which is what
// makes it safe on Redis Cluster. Checked by reading each script's redis.call()s.
import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { Redis } from 'ioredis';
import { describe, expect, it } from 'vitest';
import { bindScript, loadLuaScript } from '../../src/kit/redis/script-loader.ts';

const SRC = path.resolve(import.meta.dirname, '../../src');
const scripts = (readdirSync(SRC, { recursive: true }) as string[]).filter((f) => f.endsWith('.lua')).sort();

/** Commands whose every argument is a key; PUBLISH takes a channel; the rest one key first. */
const ALL_KEYS = new Set(['DEL', 'EXISTS', 'UNLINK', 'MGET', 'TOUCH']);
const NO_KEYS = new Set(['PUBLISH']);

/** The arguments of each redis.call/pcall in `lua`, split at top-level commas. */
function calls(lua: string): { command: string; args: string[] }[] {
  const out: { command: string; args: string[] }[] = [];
  const re = /redis\.p?call\(/g;
  for (let m = re.exec(lua); m; m = re.exec(lua)) {
    let depth = 0;
    let quote = '';
    let cur = '';
    const args: string[] = [];
    for (let i = m.index + m[0].length; i < lua.length; i++) {
      const ch = lua[i]!;
      if (quote) {
        cur += ch;
        if (ch === quote) quote = '';
        continue;
      }
      if (ch === "'" || ch === '"') quote = ch;
      else if (ch === '(' || ch === '{' || ch === '[') depth++;
      else if (ch === ')' || ch === '}' || ch === ']') {
        if (depth === 0) break;
        depth--;
      } else if (ch === ',' && depth === 0) {
        args.push(cur.trim());
        cur = '';
        continue;
      }
      cur += ch;
    }
    args.push(cur.trim());
    out.push({ command: args[0]!.replace(/^['"]|['"]$/g, '').toUpperCase(), args: args.slice(1) });
  }
  return out;
}

/** What is wrong with a script's use of keys, given its number of KEYS. */
function keyViolations(lua: string, numberOfKeys: number): string[] {
  const code = lua.replace(/--\[\[[\s\S]*?\]\]/g, '').replace(/--.*$/gm, '');
  const bad: string[] = [];
  for (const { command, args } of calls(code)) {
    if (NO_KEYS.has(command)) continue;
    for (const key of ALL_KEYS.has(command) ? args : args.slice(0, 1)) {
      const k = /^KEYS\[(\d+)\]$/.exec(key);
      if (!k) bad.push(`${command} on ${key}: not one of KEYS`);
      else if (Number(k[1]) < 1 || Number(k[1]) > numberOfKeys) bad.push(`${command} on ${key}: only ${numberOfKeys} KEYS`);
    }
  }
  return bad;
}

describe('Redis scripts', () => {
  it('are .lua files: the ten of the cache and the rate limiter', () => {
    expect(scripts.filter((f) => f.startsWith(path.join('kit', 'cache', 'lua')))).toHaveLength(10);
    expect(scripts).toContain(path.join('kit', 'security', 'rate-limit-hit-1.lua'));
  });

  it.each(scripts)('%s: its header documents every KEYS[i], and it touches no key outside KEYS', (file) => {
    const script = loadLuaScript(pathToFileURL(path.join(SRC, file)));
    const lua = readFileSync(path.join(SRC, file), 'utf8');
    const header = /^--\[\[([\s\S]*?)\]\]/.exec(lua)?.[1] ?? '';
    expect(header, 'a --[[ ]] contract header first').not.toBe('');
    for (let i = 1; i <= script.numberOfKeys; i++) expect(header).toMatch(new RegExp(`KEYS\\[${i}\\]\\s+\\S`));
    expect(header).not.toMatch(new RegExp(`KEYS\\[${script.numberOfKeys + 1}\\]`));
    expect(header).toMatch(/Returns/);
    expect(keyViolations(lua, script.numberOfKeys)).toEqual([]);
  });

  it('the check finds keys built from ARGV or from a value read (as the scripts once did)', () => {
    const old = `
      local gen = redis.call('GET', ARGV[1] .. 'gen') or '0'
      local v = redis.call('GET', ARGV[1] .. gen .. ':v:' .. ARGV[2])
      redis.call('DEL', KEYS[1], ARGV[1] .. 'l')
      redis.call('PUBLISH', ARGV[5], 'k ' .. gen)
      return redis.call('SETBIT', KEYS[3], tonumber(ARGV[2]), 1)`;
    expect(keyViolations(old, 2)).toEqual([
      "GET on ARGV[1] .. 'gen': not one of KEYS",
      "GET on ARGV[1] .. gen .. ':v:' .. ARGV[2]: not one of KEYS",
      "DEL on ARGV[1] .. 'l': not one of KEYS",
      'SETBIT on KEYS[3]: only 2 KEYS',
    ]);
  });
});

describe('script loader', () => {
  it('reads the number of KEYS from the file name and refuses a name without it', () => {
    const s = loadLuaScript(pathToFileURL(path.join(SRC, 'kit/cache/lua/lookup-6.lua')));
    expect([s.name, s.numberOfKeys]).toEqual(['lookup', 6]);
    expect(() => loadLuaScript(pathToFileURL(path.join(SRC, 'kit/cache/two-tier-cache.ts')))).toThrow(/<number of KEYS>/);
  });

  it('refuses a call with the wrong number of keys before anything is sent', async () => {
    const client = new Redis({ lazyConnect: true });
    const run = bindScript(client, loadLuaScript(pathToFileURL(path.join(SRC, 'kit/cache/lua/fill-4.lua'))));
    await expect(run(['a', 'b'], ['x'])).rejects.toThrow('takes 4 keys, was given 2');
    client.disconnect();
  });
});
