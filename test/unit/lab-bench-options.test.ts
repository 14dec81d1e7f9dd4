import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/kit/errors.ts';
import { BENCH_DEFAULTS, commandLine, parseBenchOptions, QUICK } from '../../src/lab/options/bench-options.ts';

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
    [['--rung', '1'], '--rung'],
    [['--rung', '11'], '--rung'],
    [['--web', '0'], '--web'],
    [['--cpu', '0'], '--cpu'],
    [['--users', '1.5'], '--users'],
    [['--sizes', '1,2,2'], '--sizes'],
    [['--sizes', '1,x'], '--sizes'],
    [['--sizes', '17'], '--sizes'],
    [['--replicas', '9'], '--replicas'],
    [['--replicas', '1.5'], '--replicas'],
    [['--db-cpu', '0'], '--db-cpu'],
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

  it('topology flags: defaults, and commands that reproduce them', () => {
    expect(parseBenchOptions([])).toMatchObject({ rung: undefined, web: undefined, cpu: undefined, users: 100, sizes: [1, 2, 4] });
    const scaling = parseBenchOptions(['--rung', '7', '--cpu', '0.2', '--sizes', '1,3', '--connections', '16']);
    expect(scaling).toMatchObject({ rung: 7, cpu: 0.2, sizes: [1, 3], connections: 16 });
    const line = commandLine('scaling', scaling, ['--rung', '--cpu', '--sizes']);
    expect(line).toContain('ladder bench scaling --rung 7 --cpu 0.2 --sizes 1,3 ');
    expect(parseBenchOptions(line.split(' ').slice(3))).toEqual(scaling);
    const session = parseBenchOptions(['--rung', '3', '--web', '2', '--users', '50']);
    expect(commandLine('session', session, ['--users'])).toContain('ladder bench session --rung 3 --web 2 --users 50 ');
    expect(parseBenchOptions(commandLine('session', session, ['--users']).split(' ').slice(3))).toEqual(session);
    // A scenario that does not read --users or --sizes does not write them.
    expect(commandLine('redirect', session)).not.toMatch(/--users|--sizes/);
    const replicas = parseBenchOptions(['--replicas', '3', '--db-cpu', '0.25']);
    expect(replicas).toMatchObject({ replicas: 3, dbCpu: 0.25 });
    expect(parseBenchOptions([])).toMatchObject({ replicas: undefined, dbCpu: undefined });
    expect(commandLine('replicas', replicas)).toContain('ladder bench replicas --replicas 3 --db-cpu 0.25 ');
    expect(parseBenchOptions(commandLine('replicas', replicas).split(' ').slice(3))).toEqual(replicas);
  });
});
