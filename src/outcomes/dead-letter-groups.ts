/**
 * Dead letters are triaged by group: (limit key, last status, reason). Counters per group are kept
 * in Redis beside the dead letters (written with them, lowered when one is replayed or purged), so
 * a dashboard can show the groups of a huge dead-letter queue without reading it.
 */
export interface DeadLetterGroupKey {
  limitKey: string | null;
  status: number | null;
  reason: string;
}

/** The hash field of a group: `["orders",404,"permanent-status"]`. */
export function groupField(group: { limitKey?: string | null | undefined; status?: number | null | undefined; reason: string }): string {
  return JSON.stringify([group.limitKey ?? null, group.status ?? null, group.reason]);
}

export function parseGroupField(field: string): DeadLetterGroupKey | undefined {
  try {
    const [limitKey, status, reason] = JSON.parse(field) as [unknown, unknown, unknown];
    if (
      (limitKey !== null && typeof limitKey !== 'string') ||
      (status !== null && typeof status !== 'number') ||
      typeof reason !== 'string'
    )
      return undefined;
    return { limitKey, status, reason };
  } catch {
    return undefined;
  }
}
