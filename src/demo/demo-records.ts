/** The demo API's one resource, `/records`: CRUD in memory, with `Idempotency-Key` on POST. */

export interface DemoRecord {
  id: number;
  createdAt: string;
  updatedAt?: string;
  [field: string]: unknown;
}

export type Answer = { status: number; body?: unknown; headers?: Record<string, string> };

export interface DemoRecords {
  /** Answers a request for `path` (without its query). `idempotencyKey` is the header's value, if any. */
  route(method: string, path: string, idempotencyKey: string | undefined, raw: string): Answer;
  /** Every record, in order of creation. */
  list(): DemoRecord[];
}

const RESERVED_FIELDS = new Set(['id', 'createdAt', 'updatedAt']);

/** `counts` is the API's stats object: records created and idempotent replays are counted there. */
export function createDemoRecords(counts: { created: number; idempotentReplays: number }): DemoRecords {
  const records = new Map<number, DemoRecord>();
  const byIdempotencyKey = new Map<string, DemoRecord>();
  let nextId = 1;

  // A repeated Idempotency-Key answers the record as it was first created (like a replayed
  // response), even if it was updated or deleted since.
  const createRecord = (body: Record<string, unknown>, key: string | undefined): Answer => {
    const replay = key === undefined ? undefined : byIdempotencyKey.get(key);
    if (replay) {
      counts.idempotentReplays++;
      return { status: 200, body: replay, headers: { location: `/records/${replay.id}` } };
    }
    const id = nextId++;
    const record: DemoRecord = { id, ...withoutReserved(body), createdAt: new Date().toISOString() };
    records.set(id, record);
    if (key !== undefined) byIdempotencyKey.set(key, record);
    counts.created++;
    return { status: 201, body: record, headers: { location: `/records/${id}` } };
  };

  const route = (method: string, path: string, idempotencyKey: string | undefined, raw: string): Answer => {
    if (path === '/records') {
      if (method === 'GET') return { status: 200, body: { items: [...records.values()], total: records.size } };
      if (method !== 'POST') return methodNotAllowed('GET, POST');
      const body = parseObject(raw);
      if ('status' in body) return body;
      return createRecord(body.value, idempotencyKey);
    }
    const match = /^\/records\/([1-9]\d*)$/.exec(path);
    if (!match) return { status: 404, body: { error: 'not found' } };
    const id = Number(match[1]);
    const existing = records.get(id);
    if (method === 'GET') return existing ? { status: 200, body: existing } : notFound();
    if (method === 'DELETE') {
      if (!existing) return notFound();
      records.delete(id);
      return { status: 204 };
    }
    if (method !== 'PUT') return methodNotAllowed('GET, PUT, DELETE');
    const body = parseObject(raw);
    if ('status' in body) return body;
    if (!existing) return notFound();
    const updated: DemoRecord = { id, ...withoutReserved(body.value), createdAt: existing.createdAt, updatedAt: new Date().toISOString() };
    records.set(id, updated);
    return { status: 200, body: updated };
  };

  return { route, list: () => [...records.values()] };
}

function parseObject(raw: string): { value: Record<string, unknown> } | Answer {
  let value: unknown;
  try {
    value = JSON.parse(raw);
  } catch {
    return { status: 400, body: { error: 'invalid JSON' } };
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return { status: 400, body: { error: 'expected a JSON object' } };
  }
  return { value: value as Record<string, unknown> };
}

/** The server owns `id`, `createdAt` and `updatedAt`; a body cannot set them. */
function withoutReserved(body: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(body).filter(([field]) => !RESERVED_FIELDS.has(field)));
}

const notFound = (): Answer => ({ status: 404, body: { error: 'not found' } });
const methodNotAllowed = (allow: string): Answer => ({ status: 405, body: { error: 'method not allowed' }, headers: { allow } });
