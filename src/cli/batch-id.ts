import { UsageError } from '../errors.js';
import { BATCH_ID_RULE, isBatchId } from '../redis/keys.js';

/** A batch id given on the command line (`what`: `--batch`, `batch`), refused with a UsageError unless valid. */
export function batchIdArgument(what: string, value: string): string {
  if (!isBatchId(value)) throw new UsageError(`${what} ${JSON.stringify(value)}: a batch id has ${BATCH_ID_RULE}`);
  return value;
}
