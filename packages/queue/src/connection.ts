import { Redis, type RedisOptions } from 'ioredis';

/**
 * The one Redis connection factory. Workers get `maxRetriesPerRequest: null` (BullMQ's requirement: a blocking
 * worker must wait out a Redis restart rather than fail its commands); producers fail fast instead, so an API call
 * made while Redis is down answers 503 at once rather than hanging.
 */
export function createRedisConnection(url: string, role: 'worker' | 'producer', options: RedisOptions = {}): Redis {
  return new Redis(url, {
    // What `CLIENT LIST` shows for it (copied to the connections BullMQ duplicates from it).
    connectionName: `lookalike-${role}`,
    ...(role === 'worker'
      ? { maxRetriesPerRequest: null, enableOfflineQueue: true }
      : { maxRetriesPerRequest: 2, enableOfflineQueue: false }),
    // Reconnect with a capped backoff; the worker keeps trying for as long as the process lives.
    retryStrategy: (times) => Math.min(200 * 2 ** Math.min(times, 6), 5000),
    lazyConnect: false,
    ...options,
  });
}
