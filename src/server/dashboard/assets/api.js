// The dashboard script's one way to the server: same-origin JSON requests with the viewer's cookie,
// never cached, given up after 10 s. A failure throws an Error with the HTTP status (0 when there
// was no answer) and, from the API's problem details, its detail and code.

const REQUEST_TIMEOUT_MS = 10000;

export async function api(path, init) {
  const options = init || {};
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), REQUEST_TIMEOUT_MS);
  let response;
  try {
    response = await fetch(path, {
      method: options.method || 'GET',
      credentials: 'same-origin',
      cache: 'no-store',
      headers: Object.assign({ accept: 'application/json' }, options.headers || {}),
      body: options.body,
      signal: controller.signal,
    });
  } catch (error) {
    const message = error && error.name === 'AbortError' ? 'the server did not answer within 10 s' : 'cannot reach the sluice server';
    throw Object.assign(new Error(message), { status: 0 });
  } finally {
    clearTimeout(timer);
  }
  const text = await response.text();
  let body = null;
  try {
    body = text ? JSON.parse(text) : null;
  } catch {
    body = null;
  }
  if (!response.ok) {
    // Error answers are problem details: `detail` says what went wrong (`message` is its old name).
    const message = body && (body.detail || body.message) ? body.detail || body.message : 'HTTP ' + response.status;
    throw Object.assign(new Error(message), { status: response.status, code: body && body.code });
  }
  return body;
}
