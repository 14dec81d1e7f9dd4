// CONNECT (a tunnel request, meant for forward proxies) never reaches Fastify: Node hands
// it to the server's 'connect' listeners and, when there are none, closes the connection
// without a word, which a client sees as a reset. We answer it as any unrouted method is
// answered: a JSON 404 in the catalogue's shape, then close.
import type { Duplex } from 'node:stream';
import { LadderError } from '../errors.ts';
import { SECURITY_HEADERS } from '../security/security-headers.ts';

export function refuseConnect(socket: Duplex, log: { debug(obj: object, msg: string): void }): void {
  const body = JSON.stringify(new LadderError('NOT_FOUND', 'No route CONNECT.').toBody());
  const headers = Object.entries({
    ...SECURITY_HEADERS,
    'content-type': 'application/json; charset=utf-8',
    'content-length': String(Buffer.byteLength(body)),
    'cache-control': 'no-store',
    connection: 'close',
  }).map(([name, value]) => `${name}: ${value}\r\n`);
  // The client may already be gone: its socket's error is the client's, not ours (debug).
  socket.on('error', (err) => {
    log.debug({ err }, 'CONNECT client went away');
    socket.destroy();
  });
  socket.end(`HTTP/1.1 404 Not Found\r\n${headers.join('')}\r\n${body}`);
}
