#!/usr/bin/env node
// The compiled build: `tsc -p tsconfig.build.json` turns src/ into dist/, then every file of
// src/ that is not TypeScript (SQL migrations, static assets, Lua scripts, ...) is copied to
// the same place in dist/, so code that finds such a file next to itself through
// import.meta.url finds it in dist/ too. Files in dist/ whose source is gone are removed.
//
// Freshness: the build writes dist/.build-stamp last, holding the newest modification time
// of its inputs as read before tsc started. The build is fresh while no input is newer
// (a deleted file changes its folder's time, so deletions count too). Checking costs one
// stat per file of src/, a few milliseconds; tsc itself takes 5-15 s, so it runs only when
// something changed.
//
//   node scripts/build.mjs            build now (npm run build)
//   node scripts/build.mjs --prepare  npm's prepare: build, or say why not and exit 0 when
//                                     typescript is absent (npm install --omit=dev)
//   node scripts/build.mjs --check    exit 0 when fresh, 1 when stale (prints which)
import { spawnSync } from 'node:child_process';
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  rmdirSync,
  rmSync,
  statSync,
  writeFileSync,
  closeSync,
} from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('..', import.meta.url));
const SRC = path.join(ROOT, 'src');
export const DIST = path.join(ROOT, 'dist');
const STAMP = path.join(DIST, '.build-stamp');
const LOCK = path.join(DIST, '.build-lock');
const TSBUILDINFO = '.tsbuildinfo';
/** Inputs outside src/ that change what the build produces. */
const CONFIG_INPUTS = ['tsconfig.json', 'tsconfig.build.json', 'scripts/build.mjs'];
/** How a TypeScript source's name maps to its compiled file's name. */
const COMPILED = { '.ts': '.js', '.mts': '.mjs', '.cts': '.cjs' };
const LOCK_WAIT_MS = 5 * 60_000;

/** Why a build is needed, or undefined when dist/ is fresh. Throws when there is no src/. */
export function staleReason() {
  if (!existsSync(STAMP)) return existsSync(LOCK) ? 'a build is running' : 'dist/ has not been built';
  const built = Number(readFileSync(STAMP, 'utf8').trim());
  const newest = newestInput();
  if (!(newest.mtimeMs <= built)) return `${path.relative(ROOT, newest.file)} is newer than dist/`;
  return undefined;
}

/** Whether this checkout has sources to build (an installed copy may carry dist/ only). */
export function hasSources() {
  return existsSync(SRC);
}

/** The resolved tsc entry, or undefined when typescript is not installed. */
export function findTsc() {
  try {
    return createRequire(import.meta.url).resolve('typescript/bin/tsc');
  } catch {
    return undefined; // not installed: the callers say what to do about it
  }
}

/**
 * Builds dist/ from src/ unless it is fresh. One build at a time: a second caller waits for
 * the running one and then finds the build fresh. Messages go to stderr so that commands
 * printing JSON on stdout stay parseable. Returns false when tsc reported errors.
 */
export function build({ log = (m) => process.stderr.write(`${m}\n`) } = {}) {
  const tsc = findTsc();
  if (!tsc)
    throw new Error(
      'typescript is not installed, so src/ cannot be compiled: run `npm install` (with dev dependencies), then `npm run build`',
    );
  mkdirSync(DIST, { recursive: true });
  const release = acquireLock();
  try {
    if (staleReason() === undefined) return true; // another process built it while we waited
    rmSync(STAMP, { force: true });
    const newest = newestInput().mtimeMs;
    const started = Date.now();
    // tsc writes its diagnostics to stdout; they go to our stderr with the rest.
    const r = spawnSync(process.execPath, [tsc, '-p', path.join(ROOT, 'tsconfig.build.json')], {
      cwd: ROOT,
      stdio: ['ignore', 2, 2],
    });
    if (r.error) throw r.error;
    copyAssets();
    removeOrphans(DIST);
    if (r.status !== 0) {
      log(`ladder: the build failed (tsc exit ${r.status ?? r.signal}); dist/ stays stale`);
      return false;
    }
    writeFileSync(STAMP, `${newest}\n`);
    log(`ladder: built dist/ in ${((Date.now() - started) / 1000).toFixed(1)} s`);
    return true;
  } finally {
    release();
  }
}

/** Newest modification time over src/ (files and folders) and the build's config files. */
function newestInput() {
  let newest = { file: SRC, mtimeMs: statSync(SRC).mtimeMs };
  const consider = (file, mtimeMs) => {
    if (mtimeMs > newest.mtimeMs) newest = { file, mtimeMs };
  };
  for (const f of CONFIG_INPUTS) {
    const file = path.join(ROOT, f);
    if (existsSync(file)) consider(file, statSync(file).mtimeMs);
  }
  walk(
    SRC,
    (file, stat) => consider(file, stat.mtimeMs),
    (dir, stat) => consider(dir, stat.mtimeMs),
  );
  return newest;
}

function walk(dir, onFile, onDir = () => undefined) {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, entry.name);
    if (entry.isDirectory()) {
      onDir(p, statSync(p));
      walk(p, onFile, onDir);
    } else if (entry.isFile()) onFile(p, statSync(p));
  }
}

function isTypeScript(file) {
  return Object.keys(COMPILED).some((ext) => file.endsWith(ext));
}

/** Every non-TypeScript file of src/ to the same relative place in dist/. */
function copyAssets() {
  walk(SRC, (file) => {
    if (isTypeScript(file)) return;
    const target = path.join(DIST, path.relative(SRC, file));
    mkdirSync(path.dirname(target), { recursive: true });
    copyFileSync(file, target);
  });
}

/** Whether dist/<rel> still has a source: the same file (an asset) or the .ts it came from. */
function hasSource(rel) {
  if (existsSync(path.join(SRC, rel))) return true;
  for (const [from, to] of Object.entries(COMPILED)) {
    if (rel.endsWith(to) && existsSync(path.join(SRC, rel.slice(0, -to.length) + from))) return true;
  }
  return false;
}

/** Removes files of dist/ whose source was deleted or renamed, then folders left empty. */
function removeOrphans(dir) {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, entry.name);
    const rel = path.relative(DIST, p);
    if (entry.isDirectory()) {
      removeOrphans(p);
      if (readdirSync(p).length === 0) rmdirSync(p);
    } else if (dir === DIST && (entry.name.startsWith('.build-') || entry.name === TSBUILDINFO)) {
      continue; // the build's own bookkeeping
    } else if (!hasSource(rel)) rmSync(p);
  }
}

/** Takes dist/.build-lock (a file holding our pid); waits while a live process holds it. */
function acquireLock() {
  const deadline = Date.now() + LOCK_WAIT_MS;
  let said = false;
  for (;;) {
    try {
      const fd = openSync(LOCK, 'wx');
      writeFileSync(fd, `${process.pid}\n`);
      closeSync(fd);
      return () => rmSync(LOCK, { force: true });
    } catch (err) {
      if (err.code !== 'EEXIST') throw err;
    }
    const holder = lockHolder();
    if (holder === undefined) continue; // released meanwhile: try again
    // A dead holder's lock is stale; so is one still without a pid after 10 s (its holder
    // died between creating it and writing the pid).
    if (holder.pid ? !alive(holder.pid) : holder.ageMs > 10_000) {
      rmSync(LOCK, { force: true });
      continue;
    }
    if (Date.now() > deadline)
      throw new Error(
        `another build (pid ${holder.pid}) has held ${LOCK} for over ${LOCK_WAIT_MS / 60_000} minutes`,
      );
    if (!said) process.stderr.write(`ladder: waiting for the build running in pid ${holder.pid}\n`);
    said = true;
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 200);
  }
}

/** The lock's pid (0 while being written) and age, or undefined when there is no lock. */
function lockHolder() {
  try {
    const ageMs = Date.now() - statSync(LOCK).mtimeMs;
    return { pid: Number(readFileSync(LOCK, 'utf8').trim()) || 0, ageMs };
  } catch (err) {
    if (err.code === 'ENOENT') return undefined;
    throw err;
  }
}

function alive(pid) {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return err.code === 'EPERM'; // exists, owned by someone else
  }
}

/**
 * What `ladder` runs before loading dist/: builds when src/ changed, saying so in one line.
 * Without typescript (a production install) an existing build runs as it is; no build at
 * all is an error that names the command to run.
 */
export function ensureFreshBuild() {
  if (!hasSources()) return;
  const reason = staleReason();
  if (reason === undefined) return;
  if (!findTsc()) {
    if (existsSync(path.join(DIST, 'cli', 'main.js'))) {
      process.stderr.write(
        `ladder: ${reason}, but typescript is not installed; running the existing build\n`,
      );
      return;
    }
    throw new Error(
      'ladder: dist/ has not been built and typescript is not installed: run `npm install` (with dev dependencies), then `npm run build`',
    );
  }
  process.stderr.write(`ladder: building dist/ (${reason})\n`);
  if (!build())
    throw new Error(
      'ladder: the build failed (the tsc errors are above); fix them or run `npm run build` to see them again',
    );
}

function cli(args) {
  if (args.includes('--check')) {
    const reason = staleReason();
    process.stderr.write(reason === undefined ? 'dist/ is fresh\n' : `dist/ is stale: ${reason}\n`);
    return reason === undefined ? 0 : 1;
  }
  if (args.includes('--prepare') && !findTsc()) {
    process.stderr.write(
      'ladder: typescript is not installed (a production install?), so dist/ was not built; `npm run build` builds it\n',
    );
    return 0;
  }
  if (staleReason() === undefined) {
    process.stderr.write('ladder: dist/ is up to date\n');
    return 0;
  }
  return build() ? 0 : 1;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  process.exitCode = cli(process.argv.slice(2));
}
