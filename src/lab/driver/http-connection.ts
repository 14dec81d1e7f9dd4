// One keep-alive HTTP/1.1 connection that sends GETs one at a time and reports the status.
// The load driver uses this instead of node:http's client because the driver must be much
// faster than the servers it measures: node:http parses every header into objects and
// tops out near the throughput of a bare Fastify handler, which would make the reference
// measure the driver. Here a response costs one indexOf and one regex.
// Scope, on purpose: GET only (with an optional Cookie header), no pipelining, bodies
// framed by Content-Length (what every server we measure sends); anything else is a
// protocol error, counted as a failure.
import net from 'node:net';

const MAX_HEAD = 64 * 1024;
const HEAD_END = Buffer.from('\r\n\r\n');
const EMPTY = Buffer.alloc(0);

export class HttpConnection {
  private buf: Buffer = EMPTY;
  /** Body bytes still to come; -1 while waiting for a head. */
  private bodyLeft = -1;
  private status = 0;
  private closeAfter = false;
  private pending: { resolve: (status: number) => void; reject: (err: Error) => void } | undefined;
  private failure: Error | undefined;

  private constructor(
    private readonly socket: net.Socket,
    private readonly hostHeader: string,
  ) {
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', (err) => this.fail(err));
    socket.on('close', () => this.fail(new Error('connection closed by the server')));
  }

  static open(host: string, port: number, timeoutMs = 5000): Promise<HttpConnection> {
    return new Promise((resolve, reject) => {
      const socket = net.connect({ host, port });
      const timer = setTimeout(() => socket.destroy(new Error(`connect to ${host}:${port} timed out`)), timeoutMs);
      socket.once('error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
      socket.once('connect', () => {
        clearTimeout(timer);
        socket.removeAllListeners('error');
        resolve(new HttpConnection(socket, `${host}:${port}`));
      });
    });
  }

  /** False once the connection failed or the server asked to close it. */
  get usable(): boolean {
    return this.failure === undefined && !this.closeAfter;
  }

  /**
   * Sends GET path, with a Cookie header when given (a logged-in user); resolves with the
   * response status once the whole response is read.
   */
  get(path: string, cookie?: string): Promise<number> {
    if (this.failure) return Promise.reject(this.failure);
    if (this.pending) return Promise.reject(new Error('one request at a time per connection'));
    return new Promise((resolve, reject) => {
      this.pending = { resolve, reject };
      const extra = cookie === undefined ? '' : `Cookie: ${cookie}\r\n`;
      this.socket.write(`GET ${path} HTTP/1.1\r\nHost: ${this.hostHeader}\r\n${extra}\r\n`, 'latin1');
    });
  }

  close(): void {
    this.failure ??= new Error('connection closed');
    this.socket.destroy();
  }

  private onData(chunk: Buffer): void {
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
    for (;;) {
      if (this.bodyLeft < 0 && !this.readHead()) return;
      if (this.buf.length < this.bodyLeft) {
        this.bodyLeft -= this.buf.length;
        this.buf = EMPTY;
        return;
      }
      this.buf = this.buf.length === this.bodyLeft ? EMPTY : this.buf.subarray(this.bodyLeft);
      this.bodyLeft = -1;
      const pending = this.pending;
      this.pending = undefined;
      if (!pending) return this.fail(new Error('response without a request'));
      pending.resolve(this.status);
      if (this.closeAfter) this.socket.end();
      if (this.buf.length === 0) return;
    }
  }

  /** Parses a complete head from the buffer; false when more bytes are needed. */
  private readHead(): boolean {
    const end = this.buf.indexOf(HEAD_END);
    if (end < 0) {
      if (this.buf.length > MAX_HEAD) this.fail(new Error('response head larger than 64 KiB'));
      return false;
    }
    const head = this.buf.toString('latin1', 0, end);
    this.buf = this.buf.subarray(end + HEAD_END.length);
    const status = Number(head.slice(9, 12));
    if (!head.startsWith('HTTP/1.') || !Number.isInteger(status)) {
      this.fail(new Error(`not an HTTP/1.x response: ${JSON.stringify(head.slice(0, 40))}`));
      return false;
    }
    const length = /\r\ncontent-length: *(\d+)/i.exec(head);
    if (length) this.bodyLeft = Number(length[1]);
    else if (status === 204 || status === 304 || status < 200) this.bodyLeft = 0;
    else {
      this.fail(new Error(`status ${status} response without Content-Length (unsupported framing)`));
      return false;
    }
    this.status = status;
    this.closeAfter = /\r\nconnection: *close/i.test(head);
    return true;
  }

  private fail(err: Error): void {
    if (!this.failure) this.failure = err;
    const pending = this.pending;
    this.pending = undefined;
    pending?.reject(this.failure);
    this.socket.destroy();
  }
}
