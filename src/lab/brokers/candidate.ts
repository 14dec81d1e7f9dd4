// What the broker comparison needs of each candidate (docs/decisions.md, "Rung 9: the
// broker"): a server process it starts, kills and restarts on its own port and folder, and
// a client that publishes, consumes with acknowledgements, retries and dead-letters. Each
// candidate implements these in its own file; the scenarios (scenarios.ts) know nothing else.

/** A message as the click relay would send it: a batch of clicks, with a sequence number. */
export interface ClickBatch {
  seq: number;
  /** [link id, day, clicks] */
  clicks: [number, string, number][];
}

/** One delivery of a message to a consumer. */
export interface Delivery {
  seq: number;
  /** 1 on the first delivery, as the broker counts it (stalls included where it counts them). */
  attempt: number;
}

/** What a handler makes of a delivery: acknowledge it, or report a failure (retry, then dead-letter). */
export type Outcome = 'ack' | 'fail';
export type Handler = (d: Delivery) => Promise<Outcome>;

export interface QueueSettings {
  /** Unique per phase, so phases never see each other's messages. [a-z0-9_] */
  name: string;
  /** How long a delivery may stay unacknowledged before another consumer gets it. */
  visibilityMs: number;
  /** Deliveries before a message goes to the dead-letter queue. */
  maxAttempts: number;
  /** Delay before a failed message is delivered again. */
  retryDelayMs: number;
}

export interface Subscription {
  close(): Promise<void>;
}

export interface QueueClient {
  /** Creates the queue (and its dead-letter queue). */
  setup(): Promise<void>;
  /** Resolves once the broker has acknowledged every message (durably, as far as it promises). */
  publish(batches: ClickBatch[]): Promise<void>;
  consume(concurrency: number, handler: Handler): Promise<Subscription>;
  /** Sequence numbers in the dead-letter queue. */
  deadLettered(): Promise<number[]>;
  /** Messages still waiting or in flight. */
  depth(): Promise<number>;
  close(): Promise<void>;
}

/** A broker server we own: its own loopback port and data folder. */
export interface BrokerServer {
  /** Where clients connect: opaque to the scenarios, passed to `Candidate.client` (and to the child consumer). */
  readonly address: string;
  /** The server's main process (its tree is what CPU is counted on), undefined while it is down. */
  pid(): number | undefined;
  start(): Promise<void>;
  /** SIGKILL of every process of the server; resolves once they are gone. */
  kill(): Promise<void>;
  /** Graceful stop (then SIGKILL after a timeout), and the data folder removed. */
  stop(): Promise<void>;
}

export interface Candidate {
  readonly name: string;
  /** Set on a server-settings variant of another candidate: same client code, so the redelivery scenario is not repeated. */
  readonly variantOf?: string;
  /** What runs, for the report: server and client versions, settings that matter. */
  describe(): Record<string, string>;
  server(dir: string, port: number): BrokerServer;
  client(address: string, settings: QueueSettings): Promise<QueueClient>;
}
