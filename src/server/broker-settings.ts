// The broker's settings of a worker or the relay, from the environment the launcher sets.
import { ConfigError } from '../kit/errors.ts';
import { BROKER_DEFAULTS, type BrokerSettings } from '../kit/queue/broker.ts';

export function brokerSettings(env: NodeJS.ProcessEnv = process.env): BrokerSettings {
  const url = env.QUEUE_URL;
  if (!url || !/^redis:\/\/[^/\s]+$/.test(url)) throw new ConfigError('QUEUE_URL', 'is not set to redis://host:port', 'the launcher sets it to the broker (node `queue`)');
  return { ...BROKER_DEFAULTS, url };
}
