import type { Cluster, Redis } from 'ioredis';

/**
 * A connection to Redis: one server (`Redis`) or a Redis Cluster (`Cluster`, which routes each
 * command to the master that holds its keys' slot). Everything sluice does runs on either: every
 * script's and pipeline's keys share one hash tag (see keys.ts).
 */
export type RedisClient = Redis | Cluster;
