// The launcher's free ports: below the kernel's range for outgoing connections (so no
// connection takes one before its node binds it), never the same one twice in a process,
// and above the ports fetch() refuses.
import { readFileSync } from 'node:fs';
import net from 'node:net';
import { expect, it } from 'vitest';
import { freePort } from '../../src/launcher/state-dir.ts';

it('hands out distinct, bindable ports between 20000 and the ephemeral range', async () => {
  const low = Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]);
  const ports: number[] = [];
  for (let i = 0; i < 200; i++) ports.push(await freePort());
  expect(new Set(ports).size).toBe(ports.length);
  for (const p of ports) {
    expect(p).toBeGreaterThanOrEqual(20_000);
    expect(p).toBeLessThan(low);
  }
  // Each is free to bind now.
  const srv = net.createServer();
  await new Promise<void>((resolve, reject) => {
    srv.once('error', reject);
    srv.listen(ports[0], '127.0.0.1', () => resolve());
  });
  await new Promise<void>((resolve) => srv.close(() => resolve()));
});
