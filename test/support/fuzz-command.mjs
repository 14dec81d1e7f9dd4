// `npm run fuzz -- --seconds N [--seed S]`: the in-suite fuzzer (test/integration/fuzz.test.ts)
// for as long as asked. Plain Node, so it needs no build; it runs vitest on that one file.
import { spawn } from 'node:child_process';

const args = process.argv.slice(2);
const value = (name) => {
  const i = args.indexOf(`--${name}`);
  return i < 0 ? undefined : args[i + 1];
};
const seconds = value('seconds') ?? '600';
const seed = value('seed');
if (!/^\d{1,6}$/.test(seconds) || Number(seconds) < 1) {
  console.error(`--seconds: "${seconds}" is not a whole number of seconds from 1 to 999999. Fix: npm run fuzz -- --seconds 600`);
  process.exit(1);
}
if (seed !== undefined && !/^-?\d{1,10}$/.test(seed)) {
  console.error(`--seed: "${seed}" is not an integer. Fix: use the seed a failing run printed`);
  process.exit(1);
}
const env = { ...process.env, FUZZ_SECONDS: seconds, ...(seed === undefined ? {} : { FUZZ_SEED: seed }) };
const child = spawn('npx', ['vitest', 'run', 'test/integration/fuzz.test.ts'], { stdio: 'inherit', env });
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => child.kill(signal));
child.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
