// The layering rule (eslint.config.js) is real: an import against it fails the lint. A probe
// file is written into the folder under test, linted with the project's own configuration,
// and removed.
import { ESLint } from 'eslint';
import { rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, test } from 'vitest';

const root = path.resolve(import.meta.dirname, '../..');
const probes: string[] = [];

async function lintProbe(folder: string, source: string): Promise<string[]> {
  const file = path.join(root, 'src', folder, `layering-probe-${process.pid}-${probes.length}.ts`);
  probes.push(file);
  writeFileSync(file, source);
  const eslint = new ESLint({ cwd: root });
  const [result] = await eslint.lintFiles([file]);
  return (result?.messages ?? []).map((m) => `${m.ruleId ?? ''}: ${m.message}`);
}

afterEach(() => {
  for (const f of probes.splice(0)) rmSync(f, { force: true });
});

describe('layering', { timeout: 60_000 }, () => {
  test('kit importing the app fails the lint', async () => {
    const messages = await lintProbe('kit', "import { linksApp } from '../app/links-app.ts';\nexport const x = linksApp;\n");
    expect(messages.join('\n')).toMatch(/no-restricted-paths.*src\/kit may not import src\/app/);
  });

  test('the launcher importing the composition root fails; the lab importing the app fails', async () => {
    expect((await lintProbe('launcher', "export { startWebProcess } from '../server/web-process.ts';\n")).join('\n')).toMatch(/src\/launcher may not import src\/server/);
    expect((await lintProbe('lab', "export { MIGRATIONS_DIR } from '../app/links-app.ts';\n")).join('\n')).toMatch(/src\/lab may not import src\/app/);
  });

  test('an import cycle fails the lint', async () => {
    const a = path.join(root, 'src', 'kit', `cycle-probe-a-${process.pid}.ts`);
    const b = path.join(root, 'src', 'kit', `cycle-probe-b-${process.pid}.ts`);
    probes.push(a, b);
    writeFileSync(a, `import { b } from './cycle-probe-b-${process.pid}.ts';\nexport const a = () => b;\n`);
    writeFileSync(b, `import { a } from './cycle-probe-a-${process.pid}.ts';\nexport const b = () => a;\n`);
    const [result] = await new ESLint({ cwd: root }).lintFiles([a]);
    expect((result?.messages ?? []).map((m) => m.ruleId)).toContain('import-x/no-cycle');
  });

  test('an import the layering allows passes', async () => {
    const messages = await lintProbe('app', "import { LadderError } from '../kit/errors.ts';\nexport const e = new LadderError('NOT_FOUND');\n");
    expect(messages.filter((m) => m.startsWith('import-x/'))).toEqual([]);
  });
});
