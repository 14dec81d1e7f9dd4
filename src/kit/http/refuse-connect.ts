// CONNECT (a tunnel request, meant for forward proxies) never reaches Fastify: Node hands
// it to the server's 'connect' listeners and, when there are none, closes the connection
// without a word, which a client sees as a reset. We answer it as any unrouted method is
// answered: a JSON 404 in the catalogue's shape, then close.
import type { Duplex } from 'node:stream';
import { LadderError } from '../errors.ts';
import { rawErrorResponse } from './raw-response.ts';

export function refuseConnect(socket: Duplex, log: { debug(obj: object, msg: string): void }): void {
  // The client may already be gone: its socket's error is the client's, not ours (debug).
  socket.on('error', (err) => {
    log.debug({ err }, 'CONNECT client went away');
    socket.destroy();
  });
  socket.end(rawErrorResponse(new LadderError('NOT_FOUND', 'No route CONNECT.')));
}
