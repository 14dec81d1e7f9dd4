#!/usr/bin/env node
// Entry point of the `ladder` command: registers the TypeScript loader, then runs the CLI.
// No build step: the sources in src/ are what runs.
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../src/cli/main.ts');
process.exitCode = await main(process.argv.slice(2));
