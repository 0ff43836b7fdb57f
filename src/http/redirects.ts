import { AddressRefusedError, RequestError } from '../errors.js';
import type { DispatchedResponse } from './dispatched-response.js';
import type { RequestSpec } from './request-spec.js';

const REDIRECTS = new Set([301, 302, 303, 307, 308]);
const MAX_REDIRECTS = 5;

/** Asked for every redirect's URL: a reason not to follow it, or undefined. */
export type RefuseUrl = (url: URL) => string | undefined;

/**
 * Follows the redirects from `first`, the answer to `spec`: at most MAX_REDIRECTS, each to a URL the policy allows, within the
 * one total deadline (`dispatch` sends each request under it). Resolves with the first answer that
 * is not a redirect to follow.
 */
export async function followRedirects(
  spec: RequestSpec,
  first: DispatchedResponse,
  dispatch: (request: RequestSpec) => Promise<DispatchedResponse>,
  refuseUrl: RefuseUrl | undefined,
): Promise<DispatchedResponse> {
  let current = spec;
  let response = first;
  for (let hops = 0; spec.followRedirects !== false && REDIRECTS.has(response.statusCode); hops++) {
    const raw = response.headers['location'];
    const location = Array.isArray(raw) ? raw[0] : raw;
    if (!location) break;
    await response.body.dump();
    if (hops === MAX_REDIRECTS)
      throw new RequestError(`${spec.method} ${spec.url.origin}${spec.url.pathname}: more than ${MAX_REDIRECTS} redirects`);
    current = redirected(current, response.statusCode, location, refuseUrl);
    response = await dispatch(current);
  }
  return response;
}

/** Credentials that never follow a redirect to another origin (plus the spec's own `secretHeaders`). */
const CREDENTIAL_HEADERS = ['authorization', 'proxy-authorization', 'cookie'];

/**
 * The request a redirect asks for: 303 (and 301/302 after a POST, as browsers do) becomes a GET
 * without a body; 307/308 keep method and body (an upload's files are read again from the start).
 * Credentials stay with their origin.
 */
function redirected(spec: RequestSpec, status: number, location: string, refuseUrl: RefuseUrl | undefined): RequestSpec {
  let url: URL;
  try {
    url = new URL(location, spec.url);
  } catch (error) {
    throw new RequestError(
      `${spec.method} ${spec.url.origin}${spec.url.pathname}: redirect to an invalid URL ${JSON.stringify(location.slice(0, 200))}`,
      error,
    );
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new AddressRefusedError(
      `redirect from ${spec.url.origin}${spec.url.pathname} to ${url.protocol} refused: only http(s) is followed`,
    );
  }
  const refusal = refuseUrl?.(url);
  if (refusal)
    throw new AddressRefusedError(
      `redirect from ${spec.url.origin}${spec.url.pathname} to ${url.origin}${url.pathname} refused: ${refusal}`,
    );
  const headers = { ...spec.headers };
  if (url.origin !== spec.url.origin) {
    for (const name of [...CREDENTIAL_HEADERS, ...(spec.secretHeaders ?? [])]) delete headers[name];
  }
  const toGet = status === 303 ? spec.method !== 'HEAD' : (status === 301 || status === 302) && spec.method === 'POST';
  if (!toGet) return { ...spec, url, headers };
  delete headers['content-type'];
  delete headers['content-length'];
  return { ...spec, method: 'GET', url, headers, body: undefined, upload: undefined };
}
