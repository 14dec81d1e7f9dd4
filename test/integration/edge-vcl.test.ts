// The edge's generated VCL under varnishtest: every .vtc file in test/vtc runs against the
// VCL that `ladder up --rung 6` writes (src/launcher/varnish-vcl.ts), its origin a scripted
// server on a free port. And each of them fails against Varnish's built-in VCL alone, so
// that what they check is the generated VCL's doing, not Varnish's defaults.
import { execFile } from 'node:child_process';
import { chmodSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { edgeVcl } from '../../src/launcher/varnish-vcl.ts';
import { freePort } from '../../src/launcher/state-dir.ts';

const run = promisify(execFile);
const VTC_DIR = path.resolve('test/vtc');
const FILES = readdirSync(VTC_DIR).filter((f) => f.endsWith('.vtc')).sort();
const dir = mkdtempSync(path.join(os.tmpdir(), 'ladder-vtc-'));
chmodSync(dir, 0o755); // run as root, Varnish compiles VCL as its own user (vcache)
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Runs one .vtc file against `vcl` (written for `port`); resolves to varnishtest's exit code and output. */
async function varnishtest(file: string, port: number, vcl: string, timeoutS = 30): Promise<{ code: number; out: string }> {
  const vclFile = path.join(dir, `${path.basename(file, '.vtc')}-${port}.vcl`);
  writeFileSync(vclFile, vcl);
  try {
    const { stdout, stderr } = await run('varnishtest', ['-q', '-t', String(timeoutS), `-Dorigin_port=${port}`, `-Dedge_vcl=${vclFile}`, path.join(VTC_DIR, file)], { timeout: 40_000 });
    return { code: 0, out: stdout + stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof e.code === 'number' ? e.code : -1, out: `${e.stdout ?? ''}${e.stderr ?? ''}` };
  }
}

function generated(port: number): string {
  // No probe and a 1 s healthy grace: the files set the origin's health by hand and wait for expiry.
  return edgeVcl({ backend: { host: '127.0.0.1', port }, host: 'edge.test', purgeToken: 'test-token-0123456789', probe: false, healthyGraceS: 1 });
}

function builtinOnly(port: number): string {
  return `vcl 4.1;\nbackend origin { .host = "127.0.0.1"; .port = "${port}"; }\n`;
}

describe('the edge VCL under varnishtest', () => {
  it('finds the .vtc files', () => {
    expect(FILES).toEqual(expect.arrayContaining(['edge-cacheable.vtc', 'edge-grace.vtc', 'edge-key.vtc', 'edge-purge.vtc']));
  });

  it.each(FILES)('%s passes with the generated VCL', async (file) => {
    const port = await freePort();
    const r = await varnishtest(file, port, generated(port));
    expect(r.out).not.toMatch(/FAILED/);
    expect(r.code).toBe(0);
  }, 45_000);

  it.each(FILES)('%s fails with the built-in VCL alone', async (file) => {
    const port = await freePort();
    const r = await varnishtest(file, port, builtinOnly(port), 5); // a hang counts as a failure too
    expect(r.code).not.toBe(0);
  }, 45_000);

  it('refuses a purge token that could break out of its VCL string', () => {
    expect(() => edgeVcl({ backend: { host: '127.0.0.1', port: 1 }, host: 'h', purgeToken: 'short' })).toThrow(/token/);
    expect(() => edgeVcl({ backend: { host: '127.0.0.1', port: 1 }, host: 'h', purgeToken: 'x"} + evil + {"yyyyyyyyyyyy' })).toThrow();
    expect(() => edgeVcl({ backend: { host: '127.0.0.1', port: 1 }, host: 'a"}b', purgeToken: 'test-token-0123456789' })).toThrow(/VCL string/);
  });
});
