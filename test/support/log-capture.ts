// Captures a web process's log lines in a test: Fastify's request loggers are children of
// its root logger and share its stream, so replacing that stream's write sees every line.
import type { FastifyBaseLogger } from 'fastify';
import pino from 'pino';

export interface LogLine {
  level: number;
  msg?: string;
  err?: { stack?: string };
  [key: string]: unknown;
}

export function captureLogs(log: FastifyBaseLogger): { lines: LogLine[]; errors(): LogLine[]; restore(): void } {
  const stream = (log as unknown as Record<symbol, { write: (s: string) => boolean }>)[pino.symbols.streamSym]!;
  const original = stream.write;
  const lines: LogLine[] = [];
  stream.write = (s: string) => {
    for (const line of s.split('\n')) if (line.trim() !== '') lines.push(JSON.parse(line) as LogLine);
    return true;
  };
  return {
    lines,
    errors: () => lines.filter((l) => l.level >= 50),
    restore: () => {
      stream.write = original;
    },
  };
}
