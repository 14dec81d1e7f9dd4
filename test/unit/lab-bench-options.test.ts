import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/kit/errors.ts';
import { BENCH_DEFAULTS, commandLine, parseBenchOptions, QUICK } from '../../src/lab/bench-options.ts';

describe('bench flags', () => {
  it('defaults, --quick, and explicit flags over --quick', () => {
    expect(parseBenchOptions([])).toMatchObject({ ...BENCH_DEFAULTS, rate: undefined, json: false });
    expect(parseBenchOptions(['--quick'])).toMatchObject(QUICK);
    expect(parseBenchOptions(['--quick', '--links', '50_000', '--rate', '1500.5'])).toMatchObject({
      links: 50_000,
      rate: 1500.5,
      duration: QUICK.duration,
    });
  });

  it.each([
    [['--links', '12.5'], '--links'],
    [['--links', '0'], '--links'],
    [['--duration', 'ten'], '--duration'],
    [['--connections=-3'], '--connections'],
    [['--rate', '0'], '--rate'],
    [['--rounds', ''], '--rounds'],
    [['--bogus'], 'flags'],
    [['redirect'], 'flags'],
  ])('refuses %j naming %s', (argv, field) => {
    let err: unknown;
    try {
      parseBenchOptions(argv);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).field).toBe(field);
  });

  it('writes the command that reproduces a run', () => {
    const o = parseBenchOptions(['--links', '2000', '--rate', '300']);
    expect(commandLine('redirect', o)).toContain('ladder bench redirect --links 2000 ');
    expect(parseBenchOptions(commandLine('redirect', o).split(' ').slice(3))).toEqual(o);
  });
});
