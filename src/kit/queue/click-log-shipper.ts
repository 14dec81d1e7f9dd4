// The relay's half of durable click capture: tails every web server's click log (the
// segments in one folder) from a persisted offset and sends each new range of whole lines to
// the broker as one batch, counted per link and day. At-least-once: a batch's range is written
// to the offsets file before it is sent (write-ahead), so a relay killed mid-send sends the
// very same range again on restart, under the same batch id (producer, start), which the
// workers recognise. A segment is deleted once shipped to its end and its writer is gone.
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, readSync, readdirSync, renameSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { countClicks, parseProducerId, producerOfFile, segmentFile, wholeLines, type ClickCount } from './click-log-format.ts';

export interface ClickBatch {
  producer: string;
  start: number;
  end: number;
  clicks: ClickCount[];
}

export interface ShipperOptions {
  dir: string;
  /** The offsets file (JSON), kept by this relay. */
  statePath: string;
  send(batch: ClickBatch): Promise<void>;
  maxBatchBytes?: number;
  /** Between passes (DEFAULT_PASS_MS). */
  pollMs?: number;
  log?: (msg: string, err?: unknown) => void;
  /** Is the writer of a segment still running? (its pid, default: signal 0) */
  writerAlive?: (pid: number) => boolean;
}

interface SegmentState {
  /** Everything before this byte has been sent. */
  offset: number;
  /** A range [offset, pending) written ahead and maybe sent: sent again first. */
  pending?: number;
}

const DEFAULT_MAX_BATCH_BYTES = 512 * 1024;
/**
 * One pass a second, as the in-process buffer of rungs 1-7 flushes: clicks show in stats
 * within about two seconds either way. Every batch costs the relay, the broker and a
 * worker a fixed few milliseconds of CPU whatever it carries; with a pass every 100 ms
 * that pipeline took about a quarter of a core at 1,600 clicks a second, on the core the
 * web server shared with it, and the redirect's p90 went from 0.5 to 4 ms
 * (docs/performance.md, rung 9).
 */
export const DEFAULT_PASS_MS = 1000;
/** Turns over the segments in one pass before the folder is listed again. */
const MAX_ROUNDS = 64;

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export class ClickLogShipper {
  private state: Record<string, SegmentState> = {};
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private stopped = false;
  private readonly maxBatch: number;
  /** Bytes of the logs not yet sent, as of the last pass (a metric). */
  backlogBytes = 0;
  clicksSent = 0;
  batchesSent = 0;

  constructor(private readonly opts: ShipperOptions) {
    this.maxBatch = opts.maxBatchBytes ?? DEFAULT_MAX_BATCH_BYTES;
    mkdirSync(opts.dir, { recursive: true });
    mkdirSync(path.dirname(opts.statePath), { recursive: true });
    if (existsSync(opts.statePath)) this.state = JSON.parse(readFileSync(opts.statePath, 'utf8')) as Record<string, SegmentState>;
  }

  start(): void {
    const loop = () => {
      if (this.stopped) return;
      this.running = this.pass()
        .catch((err: unknown) => this.opts.log?.('click log shipping failed; retrying', err))
        .finally(() => {
          this.running = undefined;
          if (!this.stopped) this.timer = setTimeout(loop, this.opts.pollMs ?? DEFAULT_PASS_MS);
        });
    };
    loop();
  }

  /**
   * Stops polling. `drain`: first ships what the logs hold now (a relay leaving with its
   * web server, as a sidecar in a cloud task whose disk goes with it, must not leave clicks
   * behind).
   */
  async stop(opts: { drain?: boolean } = {}): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    await this.running;
    if (opts.drain) {
      this.stopped = false;
      try {
        await this.pass();
      } finally {
        this.stopped = true;
      }
    }
  }

  /**
   * Ships what the logs hold, one batch per segment in turn (a busy web server's log, which
   * always has a new line, must not hold the others back), until nothing is left or
   * MAX_ROUNDS turns have passed; then retires the segments that are done.
   */
  async pass(): Promise<void> {
    const files = readdirSync(this.opts.dir).flatMap((f) => producerOfFile(f) ?? []);
    for (let round = 0; round < MAX_ROUNDS; round++) {
      let shipped = false;
      for (const producer of files) {
        if (this.stopped) return;
        if (await this.shipOne(producer)) shipped = true;
      }
      if (!shipped) break;
    }
    let backlog = 0;
    for (const producer of files) {
      const file = path.join(this.opts.dir, segmentFile(producer));
      const size = statSizeOrUndefined(file);
      const st = this.state[producer] ?? { offset: 0 };
      if (size !== undefined) backlog += size - st.offset;
      this.retireIfDone(producer, file, size, st);
    }
    // Segments whose file is gone (retired) leave the state too.
    for (const p of Object.keys(this.state)) if (!files.includes(p)) delete this.state[p];
    this.backlogBytes = backlog;
  }

  /** Sends the next batch of a segment; false when there is nothing whole to send. */
  private async shipOne(producer: string): Promise<boolean> {
    const file = path.join(this.opts.dir, segmentFile(producer));
    const st = this.state[producer] ?? { offset: 0 };
    let end = st.pending;
    let bytes: Buffer;
    if (end === undefined) {
      const size = statSizeOrUndefined(file);
      if (size === undefined || size <= st.offset) return false;
      bytes = readRange(file, st.offset, Math.min(size, st.offset + this.maxBatch));
      const whole = wholeLines(bytes);
      if (whole === 0) return false;
      bytes = bytes.subarray(0, whole);
      end = st.offset + whole;
      // Write-ahead: from now on this range is this batch, whatever happens to this process.
      this.state[producer] = { offset: st.offset, pending: end };
      this.save();
    } else {
      bytes = readRange(file, st.offset, end);
    }
    const { clicks, lines, bad } = countClicks(bytes.toString('latin1'));
    if (bad > 0) this.opts.log?.(`${producer}: ${bad} malformed line(s) in [${st.offset}, ${end}) skipped`);
    await this.opts.send({ producer, start: st.offset, end, clicks });
    this.state[producer] = { offset: end };
    this.save();
    this.clicksSent += lines - bad;
    this.batchesSent++;
    return true;
  }

  /** Deletes a segment sent to its end whose writer has moved on (a later segment) or exited. */
  private retireIfDone(producer: string, file: string, size: number | undefined, st: SegmentState): void {
    if (size === undefined || st.pending !== undefined || st.offset < size) return;
    const id = parseProducerId(producer);
    if (!id) return;
    const isAlive = this.opts.writerAlive ?? alive;
    const next = path.join(this.opts.dir, segmentFile(`${id.node}.${id.startedMs}.${id.pid}.${id.seq + 1}`));
    if (isAlive(id.pid) && !existsSync(next)) return;
    // A write that began before the writer died has landed by now (the kernel finished it);
    // check the size once more so that no last line is dropped.
    if (statSizeOrUndefined(file) !== size) return;
    unlinkSync(file);
    delete this.state[producer];
    this.save();
  }

  private save(): void {
    const tmp = `${this.opts.statePath}.tmp`;
    writeFileSync(tmp, JSON.stringify(this.state));
    renameSync(tmp, this.opts.statePath);
  }
}

function statSizeOrUndefined(file: string): number | undefined {
  try {
    return statSync(file).size;
  } catch {
    return undefined;
  }
}

function readRange(file: string, start: number, end: number): Buffer {
  const fd = openSync(file, 'r');
  try {
    const buf = Buffer.alloc(end - start);
    let got = 0;
    while (got < buf.length) {
      const n = readSync(fd, buf, got, buf.length - got, start + got);
      if (n === 0) break;
      got += n;
    }
    return buf.subarray(0, got);
  } finally {
    closeSync(fd);
  }
}
