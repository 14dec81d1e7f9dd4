// The durable click capture of rung 9: `req.queue` backed by an append-only log file of this
// process. publish() writes the click with one write(2) before it returns, that is before the
// redirect's 302 is written, so once a 302 has left, its click is in the kernel: a kill -9 of
// this process loses nothing that answered 302. Only a crash of the machine itself can lose
// the last writes the kernel had not flushed to disk (no fsync per click: that would make every
// redirect wait for the disk). The relay ships the log to the broker (click-log-shipper.ts).
//
// A write that fails (disk full) throws: the redirect answers 500 rather than a 302 whose
// click was not kept.
import { closeSync, mkdirSync, openSync, writeSync } from 'node:fs';
import path from 'node:path';
import { clickLine, producerId, segmentFile, SEGMENT_MAX_BYTES } from './click-log-format.ts';
import type { ManagedQueue, Message } from './queue.ts';

export interface ClickLogOptions {
  /** The folder every web server of the topology writes its segments to (the relay reads it). */
  dir: string;
  /** This web server's node name (web1, ...). */
  node: string;
  /** Topic whose messages are clicks ({linkId, day, key?}: key is the request key); others are refused. */
  topic?: string;
  segmentMaxBytes?: number;
}

export class ClickLogQueue implements ManagedQueue {
  private fd: number | undefined;
  private seq = 0;
  private written = 0;
  private readonly startedMs = Date.now();
  private readonly topic: string;
  private readonly maxBytes: number;
  /** Clicks written since start (a metric). */
  clicks = 0;

  constructor(private readonly opts: ClickLogOptions) {
    this.topic = opts.topic ?? 'click';
    this.maxBytes = opts.segmentMaxBytes ?? SEGMENT_MAX_BYTES;
    mkdirSync(opts.dir, { recursive: true });
  }

  /** The segment being written now (its producer id). */
  get producer(): string {
    return producerId({ node: this.opts.node, startedMs: this.startedMs, pid: process.pid, seq: this.seq });
  }

  start(): void {
    if (this.fd === undefined) this.open();
  }

  publish(topic: string, message: Message): void {
    if (topic !== this.topic) throw new Error(`no consumer for topic ${topic}`);
    if (this.fd === undefined) this.open();
    const line = clickLine(String(message.linkId), String(message.day), message.key === undefined ? undefined : String(message.key));
    if (this.written + line.length > this.maxBytes && this.written > 0) {
      closeSync(this.fd!);
      this.seq++;
      this.open();
    }
    writeSync(this.fd!, line);
    this.written += line.length;
    this.clicks++;
  }

  /** Nothing is ever buffered here: every accepted click is already in the file. */
  get size(): number {
    return 0;
  }

  async close(): Promise<void> {
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
  }

  private open(): void {
    // 'a': O_APPEND, so every write lands at the end even if something else wrote meanwhile.
    this.fd = openSync(path.join(this.opts.dir, segmentFile(this.producer)), 'a');
    this.written = 0;
  }
}
