/**
 * A target with a strict limiter per tenant, as a multi-tenant SaaS API has: `/tenants/N/…` is
 * limited per N by a GCRA (`requestsPerSecond`, `burst`; the same rule as the demo API's
 * `strictLimit`), and a request faster than that is answered `429` with `Retry-After` and counted.
 * Admitted requests are answered `200 {"ok":true}` at once; their arrival times
 * (`performance.now()`, the bench process's clock) are kept per tenant. A path without a tenant is
 * answered 404 (a mistake in the bench).
 */
import { createServer } from 'node:http';
import { performance } from 'node:perf_hooks';
import { serveOnLoopback } from './fast-target.mjs';

const BODY = Buffer.from('{"ok":true}');
const HEADERS = { 'content-type': 'application/json', 'content-length': String(BODY.length) };
const TENANT = /^\/tenants\/([^/?]+)/;

/**
 * @param {{ requestsPerSecond: number, burst?: number }} limit
 * @returns {Promise<{ url: string, requests(): number, rejected(): number, unknown(): number,
 *   arrivals(): Map<string, number[]>, rejectedByTenant(): Map<string, number>, close(): Promise<void> }>}
 */
export async function startTenantTarget({ requestsPerSecond, burst = 1 }) {
  const interval = 1_000 / requestsPerSecond;
  const tolerance = (burst - 1) * interval;
  /** @type {Map<string, { tat: number, arrivals: number[], rejected: number }>} */
  const tenants = new Map();
  let requests = 0;
  let rejected = 0;
  let unknown = 0;
  const server = createServer((req, res) => {
    const now = performance.now();
    requests++;
    req.resume();
    const id = TENANT.exec(req.url ?? '')?.[1];
    if (id === undefined) {
      unknown++;
      res.writeHead(404, HEADERS);
      res.end(BODY);
      return;
    }
    let tenant = tenants.get(id);
    if (!tenant) tenants.set(id, (tenant = { tat: 0, arrivals: [], rejected: 0 }));
    if (tenant.tat - now > tolerance) {
      tenant.rejected++;
      rejected++;
      const retryAfter = Math.max(1, Math.ceil((tenant.tat - tolerance - now) / 1_000));
      res.writeHead(429, { ...HEADERS, 'retry-after': String(retryAfter) });
      res.end(BODY);
      return;
    }
    tenant.tat = Math.max(tenant.tat, now) + interval;
    tenant.arrivals.push(now);
    res.writeHead(200, HEADERS);
    res.end(BODY);
  });
  const served = await serveOnLoopback(server);
  return {
    url: served.url,
    requests: () => requests,
    rejected: () => rejected,
    unknown: () => unknown,
    /** Admitted arrivals per tenant id (sorted: they are recorded in order). */
    arrivals: () => new Map([...tenants].map(([id, tenant]) => [id, [...tenant.arrivals]])),
    rejectedByTenant: () => new Map([...tenants].filter(([, tenant]) => tenant.rejected > 0).map(([id, tenant]) => [id, tenant.rejected])),
    close: served.close,
  };
}
