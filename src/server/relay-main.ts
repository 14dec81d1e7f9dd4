// Entry of the relay (`ladder __relay`, node `relay`, rung 9): one process that ships every web
// server's click log to the broker (click-log-shipper.ts) and publishes the outbox's unsent
// events (outbox-relay.ts). Both are at-least-once; the workers apply each message once.
// Settings from the environment the launcher sets: DATABASE_URL, QUEUE_URL, CLICK_LOG_DIR,
// RELAY_STATE_DIR (its offsets), PORT (its /healthz, /readyz and /metrics); optional
// RELAY_CLICK_PASS_MS, the time between two passes over the click logs (1000).
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import pg from 'pg';
import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import { ConfigError, failureCode } from '../kit/errors.ts';
import { startOpsServer } from '../kit/metrics/ops-server.ts';
import { untilSignal } from '../kit/process/signals.ts';
import { batchJobId } from '../kit/queue/click-log-format.ts';
import { BrokerQueue, QUEUES } from '../kit/queue/broker.ts';
import { ClickLogShipper } from '../kit/queue/click-log-shipper.ts';
import { OutboxRelay } from '../kit/queue/outbox-relay.ts';
import { clickBatchBody } from './queue-messages.ts';
import { brokerSettings } from './broker-settings.ts';

function required(name: string): string {
  const v = process.env[name];
  if (!v) throw new ConfigError(name, 'is not set', 'the launcher sets it for the relay');
  return v;
}

export async function runRelay(): Promise<number> {
  const databaseUrl = required('DATABASE_URL');
  const logDir = required('CLICK_LOG_DIR');
  const stateDir = required('RELAY_STATE_DIR');
  const settings = brokerSettings();
  const node = process.env.LADDER_NODE ?? 'relay';
  const say = (m: string) => process.stderr.write(`${node}: ${m}\n`);
  const log = (m: string, err?: unknown) => say(err ? `${m}: ${err instanceof Error ? err.message : JSON.stringify(err)}` : m);

  const clicks = new BrokerQueue(QUEUES.clicks, settings);
  const events = new BrokerQueue(QUEUES.linkEvents, settings);
  const pool = new pg.Pool({ connectionString: databaseUrl, max: 2 });
  pool.on('error', (err) => log('idle database connection failed', err));

  const passMs = process.env.RELAY_CLICK_PASS_MS === undefined ? undefined : Number(process.env.RELAY_CLICK_PASS_MS);
  if (passMs !== undefined && !(Number.isInteger(passMs) && passMs >= 10 && passMs <= 60_000)) {
    throw new ConfigError('RELAY_CLICK_PASS_MS', `is ${process.env.RELAY_CLICK_PASS_MS}`, 'give whole milliseconds from 10 to 60000');
  }
  const shipper = new ClickLogShipper({
    ...(passMs !== undefined ? { pollMs: passMs } : {}),
    dir: logDir,
    statePath: path.join(stateDir, 'click-offsets.json'),
    log,
    send: (b) => clicks.send([{ id: batchJobId(b.producer, b.start), body: clickBatchBody(b) }]),
  });
  const outbox = new OutboxRelay({
    pool,
    log,
    send: (evs) => events.send(evs.map((e) => ({ id: `e.${e.id}`, body: e }))),
  });

  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const registers = [registry];
  new Gauge({
    name: 'ladder_relay_backlog_bytes',
    help: 'Bytes of the web servers\' click logs not yet sent to the broker.',
    registers,
    collect() {
      this.set(shipper.backlogBytes);
    },
  });
  new Counter({
    name: 'ladder_relay_clicks_sent_total',
    help: 'Clicks sent to the broker (at least once: a resend after a crash counts again).',
    registers,
    collect() {
      this.reset();
      this.inc(shipper.clicksSent);
    },
  });
  new Counter({
    name: 'ladder_relay_events_sent_total',
    help: 'Outbox events published to the broker.',
    registers,
    collect() {
      this.reset();
      this.inc(outbox.published);
    },
  });

  const ops = await startOpsServer({
    host: process.env.HOST ?? '127.0.0.1',
    port: Number(process.env.PORT ?? 0),
    registry,
    ready: async () => {
      await pool.query('select 1');
      return true;
    },
  });
  shipper.start();
  outbox.start();
  say(`shipping click logs from ${logDir} and the outbox; ops at ${ops.url}`);
  await untilSignal(async () => {
    // What the logs hold now is shipped before leaving (bounded by the launcher's stop timeout).
    await Promise.all([shipper.stop({ drain: true }).catch((err: unknown) => log('could not ship the rest of the logs', err)), outbox.stop()]);
    await Promise.all([clicks.close(), events.close()]);
    await ops.close();
    await pool.end();
  }, say);
  return 0;
}

const entry = process.argv[1];
if (entry !== undefined && import.meta.url === pathToFileURL(entry).href) {
  try {
    process.exitCode = await runRelay();
  } catch (err) {
    const code = failureCode(err);
    process.stderr.write(`${process.env.LADDER_NODE ?? 'relay'}: ${code ? `${code}: ` : ''}${(err as Error).message ?? String(err)}\n`);
    process.exitCode = 1;
  }
}
