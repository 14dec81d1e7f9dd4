// Lint: typescript-eslint's type-aware rules, chiefly no floating promises (STYLE.md, habit 11),
// and the layering of ARCHITECTURE.md ("Layout"), checked on resolved paths:
//   app -> kit only; kit never imports app, server, launcher, lab or cli; topology imports
//   nothing of ours; lab never imports app or server (it drives the app over HTTP and the
//   `ladder` command); the launcher starts processes by command and imports no app or
//   server code; server (the composition root) is the only folder importing app and kit
//   implementations; no import cycles (which, with the rules above, also rules out cycles
//   between folders).
import tseslint from 'typescript-eslint';
import importX from 'eslint-plugin-import-x';

const ours = ['app', 'kit', 'server', 'launcher', 'lab', 'cli', 'topology', 'deploy'];
/** Each folder and the folders of ours it may import (besides itself). */
const MAY_IMPORT = {
  app: ['kit'],
  kit: ['topology'],
  topology: [],
  server: ['app', 'kit', 'topology'],
  launcher: ['kit', 'topology'],
  lab: ['kit', 'launcher', 'topology'],
  deploy: ['kit', 'topology'],
  cli: ['kit', 'topology', 'launcher', 'lab', 'server', 'deploy'],
};
const zones = Object.entries(MAY_IMPORT).flatMap(([target, allowed]) =>
  ours
    .filter((from) => from !== target && !allowed.includes(from))
    .map((from) => ({
      target: `./src/${target}`,
      from: `./src/${from}`,
      message: `src/${target} may not import src/${from} (ARCHITECTURE.md, "Layout"; allowed: ${allowed.join(', ') || 'nothing of ours'}).`,
    })),
);

export default tseslint.config(
  { ignores: ['node_modules/', '.ladder/', 'bench/results/', 'src/app/static/', 'src/launcher/dashboard/static/', 'dist/'] },
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': ['error', { checksVoidReturn: { arguments: false } }],
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_' }],
      '@typescript-eslint/require-await': 'off',
    },
  },
  {
    files: ['src/**/*.ts'],
    plugins: { 'import-x': importX },
    settings: {
      'import-x/resolver-next': [importX.createNodeResolver({ extensions: ['.ts', '.js'] })],
      // no-cycle parses the files an import leads to: with the TypeScript parser.
      'import-x/parsers': { '@typescript-eslint/parser': ['.ts'] },
      'import-x/extensions': ['.ts', '.js'],
    },
    rules: {
      'import-x/no-restricted-paths': ['error', { zones }],
      'import-x/no-cycle': ['error', { ignoreExternal: true }],
    },
  },
  {
    // Tests read JSON bodies of their own choosing: `any` there is the point, not a hole.
    files: ['test/**/*.ts'],
    rules: {
      '@typescript-eslint/no-explicit-any': 'off',
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-return': 'off',
      '@typescript-eslint/no-unsafe-argument': 'off',
      '@typescript-eslint/no-unsafe-call': 'off',
      '@typescript-eslint/no-non-null-assertion': 'off',
    },
  },
  { files: ['**/*.js', '**/*.mjs'], ...tseslint.configs.disableTypeChecked },
);
