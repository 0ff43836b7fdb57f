// The public API of sluice. Importing it has no side effects.
export * from './errors.js';
export { operationSchema, DEFAULT_RETRY, DEFAULT_TIMEOUTS, type Operation, type OperationInput } from './operation/schema.js';
export { parseOperation, limitKeyOf, type ParseResult } from './operation/parse-operation.js';
export {
  loadSluiceConfig,
  parseSluiceConfig,
  sluiceConfigSchema,
  EMPTY_CONFIG,
  type SluiceConfig,
  type Target,
  type Limits,
} from './config/sluice-config.js';
export { type TargetTls } from './config/tls-schema.js';
// For a caller that builds its own HttpClient: the `tls` option, read as a worker reads it.
export { loadTargetTls, type TlsMaterial } from './config/tls-files.js';
export { parseEnv, envSchema, type Env } from './config/env.js';
export {
  createProducer,
  newBatchId,
  type Producer,
  type ProducerOptions,
  type EnqueueOptions,
  type EnqueueResult,
  type EnqueueManyOptions,
  type EnqueueManySummary,
} from './queue/producer.js';
export {
  createSchedules,
  type Schedules,
  type SchedulesOptions,
  type ScheduleInfo,
  type ScheduleRunInfo,
  type AddScheduleOptions,
} from './schedules/schedules.js';
export type { ScheduleSpec } from './schedules/schedule-definition.js';
export type { ScheduleRun } from './schedules/schedule-store.js';
export { createBatches, waitForBatch, type Batches, type BatchStatus, type WaitOptions } from './outcomes/batches.js';
export type { ResultLine } from './outcomes/result-line.js';
export type { JobEnvelope, AttemptRecord } from './queue/job-data.js';
export {
  createDeadLetterStore,
  type DeadLetterStore,
  type DeadLetterFilter,
  type DeadLetterGroup,
  type ReplayResult,
} from './outcomes/dead-letter-store.js';
export type { DeadLetter, DeadLetterReason } from './outcomes/dead-letter.js';
export { createSluiceWorker, type SluiceWorker, type SluiceWorkerOptions } from './worker/sluice-worker.js';
export { createHttpClient, type HttpClient, type HttpClientOptions } from './http/http-client.js';
export { createLogger, type Logger } from './observability/logger.js';
export { createFleetMetrics, type FleetMetrics, type FleetMetricsOptions } from './observability/fleet-metrics.js';
export { discoverQueues, type DiscoverQueuesOptions } from './queue/discover-queues.js';
export { createRedisConnection } from './redis/connection.js';
