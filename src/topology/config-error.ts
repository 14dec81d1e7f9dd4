// A setting, flag or topology that cannot run: names the field, the problem and the fix.
// Its code, CONFIG_INVALID, is one of the failure catalogue's (kit/errors.ts); the class is
// here because the topology imports nothing of ours and validates flags itself.
export class ConfigError extends Error {
  readonly code = 'CONFIG_INVALID';

  constructor(
    readonly field: string,
    problem: string,
    readonly fix: string,
  ) {
    super(`${field}: ${problem}. Fix: ${fix}`);
    this.name = 'ConfigError';
  }
}
