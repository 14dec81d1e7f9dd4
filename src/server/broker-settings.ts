// The broker's settings of a worker or the relay, from the environment the launcher sets.
import { ConfigError } from '../kit/errors.ts';
import { BROKER_DEFAULTS, type BrokerSettings } from '../kit/queue/broker.ts';

export function brokerSettings(env: NodeJS.ProcessEnv = process.env): BrokerSettings {
  const url = env.QUEUE_URL;
  let ok = false;
  try {
    const u = url === undefined ? undefined : new URL(url);
    ok = u !== undefined && (u.protocol === 'redis:' || u.protocol === 'rediss:') && u.hostname !== '' && (u.pathname === '' || u.pathname === '/');
  } catch {
    ok = false;
  }
  // The URL may hold an AUTH token: never shown.
  if (!url || !ok) throw new ConfigError('QUEUE_URL', 'is not set to redis://host:port (or rediss://:token@host:port)', 'the launcher sets it to the broker (node `queue`)');
  return { ...BROKER_DEFAULTS, url };
}
