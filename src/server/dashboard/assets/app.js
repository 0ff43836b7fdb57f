// The dashboard page's script, served at /assets/app.js as a module (no framework, no build step).
// It polls GET /v1/overview every 2 s while the tab is visible and draws the queues, batches, dead
// letters and limit keys. It builds the DOM from elements and textContent only, so nothing the
// server sends is ever parsed as markup.

const REFRESH_MS = 2000;
const REQUEST_TIMEOUT_MS = 10000;
const CONFIRM_MS = 5000;
const STATES = [
  ['waiting', 'waiting'],
  ['active', 'active'],
  ['delayed', 'delayed'],
  ['paused', 'paused'],
  ['completed', 'completed'],
  ['failed', 'failed'],
];

const state = { overview: null, timer: undefined, inFlight: false, signedOut: false, lastGood: null, armed: null, replaying: null };
const numbers = new Intl.NumberFormat('en-US');
const num = (value) => numbers.format(value);
const byId = (id) => document.getElementById(id);
const sum = (values) => values.reduce((a, b) => a + b, 0);
const clock = (date) => date.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit' });

/** An element: attributes (on* are listeners, text is textContent), then children. */
function h(tag, attributes, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name === 'text') element.textContent = String(value);
    else if (name.startsWith('on')) element.addEventListener(name.slice(2), value);
    else element.setAttribute(name, value === true ? '' : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    element.append(child instanceof Node ? child : String(child));
  }
  return element;
}

function svg(tag, attributes) {
  const element = document.createElementNS('http://www.w3.org/2000/svg', tag);
  for (const [name, value] of Object.entries(attributes)) element.setAttribute(name, String(value));
  return element;
}

async function api(path, init) {
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
    const message = body && body.message ? body.message : 'HTTP ' + response.status;
    throw Object.assign(new Error(message), { status: response.status, code: body && body.code });
  }
  return body;
}

// ---- refreshing -------------------------------------------------------------------------------

async function refresh() {
  clearTimeout(state.timer);
  state.timer = undefined;
  if (state.inFlight) return;
  state.inFlight = true;
  try {
    const overview = await api('/v1/overview');
    state.overview = overview;
    state.lastGood = new Date();
    showError(null);
    render();
  } catch (error) {
    if (error.status === 401) showSignIn();
    else showError(error);
  } finally {
    state.inFlight = false;
    schedule();
  }
}

function schedule() {
  clearTimeout(state.timer);
  state.timer = undefined;
  if (!state.signedOut && !document.hidden) state.timer = setTimeout(refresh, REFRESH_MS);
}

document.addEventListener('visibilitychange', () => {
  if (document.hidden) {
    clearTimeout(state.timer);
    state.timer = undefined;
  } else if (!state.signedOut) {
    void refresh();
  }
});

function showError(error) {
  const banner = byId('error');
  const content = byId('content');
  if (!error) {
    banner.hidden = true;
    banner.textContent = '';
    content.classList.remove('stale');
    return;
  }
  const since = state.lastGood ? ' The numbers below were read at ' + clock(state.lastGood) + ' and may be out of date.' : '';
  banner.textContent = 'Could not refresh: ' + error.message + (error.code ? ' (' + error.code + ')' : '') + '.' + since;
  banner.hidden = false;
  content.classList.add('stale');
}

function notice(text) {
  byId('notice').textContent = text;
}

// ---- signing in and out ----------------------------------------------------------------------

function showSignIn(message) {
  state.signedOut = true;
  state.overview = null;
  clearTimeout(state.timer);
  byId('loading').hidden = true;
  byId('content').hidden = true;
  byId('session').hidden = true;
  byId('error').hidden = true;
  byId('signin').hidden = false;
  byId('signin-error').textContent = message || '';
  byId('token').focus();
}

byId('signin-form').addEventListener('submit', async (event) => {
  event.preventDefault();
  const field = byId('token');
  try {
    await api('/login', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ token: field.value.trim() }),
    });
  } catch (error) {
    byId('signin-error').textContent =
      error.status === 401 ? 'This server does not know that token.' : 'Could not sign in: ' + error.message;
    return;
  }
  field.value = '';
  const next = new URLSearchParams(location.search).get('next');
  if (next && /^\/dashboard(\/|\?|$)/.test(next)) {
    location.assign(next);
    return;
  }
  state.signedOut = false;
  byId('signin').hidden = true;
  byId('loading').hidden = false;
  void refresh();
});

byId('logout').addEventListener('click', async () => {
  try {
    await api('/logout', { method: 'POST', headers: { 'x-sluice-request': '1' } });
  } catch (error) {
    showError(error);
    return;
  }
  showSignIn('Signed out.');
});

// ---- replaying a dead-letter group -----------------------------------------------------------

async function replay(queue, group, key) {
  const armed = state.armed && state.armed.key === key && state.armed.until > Date.now();
  if (!armed) {
    // First click arms the button; a second within 5 s replays.
    state.armed = { key: key, until: Date.now() + CONFIRM_MS };
    render();
    setTimeout(() => {
      if (state.armed && state.armed.key === key && state.armed.until <= Date.now()) {
        state.armed = null;
        render();
      }
    }, CONFIRM_MS + 50);
    return;
  }
  state.armed = null;
  state.replaying = key;
  render();
  try {
    const result = await api('/v1/dead-letters/replay?queue=' + encodeURIComponent(queue), {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-sluice-request': '1' },
      body: JSON.stringify({ filter: { limitKey: group.limitKey, status: group.status, reason: group.reason } }),
    });
    notice(
      'Replayed ' +
        num(result.replayed) +
        ' dead letter' +
        (result.replayed === 1 ? '' : 's') +
        ' of ' +
        queue +
        ' (' +
        describe(group) +
        ').',
    );
  } catch (error) {
    showError(error);
  } finally {
    state.replaying = null;
  }
  await refresh();
}

function describe(group) {
  return (
    (group.limitKey === null ? 'no limit key' : group.limitKey) +
    ', ' +
    (group.status === null ? 'no status' : 'status ' + group.status) +
    ', ' +
    group.reason
  );
}

// ---- drawing ---------------------------------------------------------------------------------

function render() {
  const overview = state.overview;
  if (!overview) return;
  const focused = document.activeElement && document.activeElement.dataset ? document.activeElement.dataset.focusKey : undefined;
  byId('loading').hidden = true;
  byId('signin').hidden = true;
  byId('session').hidden = false;
  byId('content').hidden = false;
  byId('role').textContent = 'signed in: ' + overview.viewer.role;
  const updated = byId('updated');
  updated.textContent = 'Updated ' + clock(new Date(overview.generatedAt)) + ', every 2 s while this tab is visible.';
  updated.setAttribute('data-generated-at', overview.generatedAt);
  byId('queues').replaceChildren(...overview.queues.map((queue, index) => queueView(queue, index, overview.viewer.role)));
  byId('limits').replaceChildren(limitsView(overview.limits));
  if (focused) {
    const again = Array.from(document.querySelectorAll('[data-focus-key]')).find((element) => element.dataset.focusKey === focused);
    if (again) again.focus();
  }
}

function queueView(queue, index, role) {
  const titleId = 'queue-' + index;
  return h(
    'article',
    { class: 'queue', 'data-testid': 'queue', 'data-queue': queue.name, 'aria-labelledby': titleId },
    h(
      'h3',
      { id: titleId },
      queue.name,
      queue.isDefault ? h('span', { class: 'badge', text: 'default' }) : null,
      queue.paused ? h('span', { class: 'badge warn', text: 'paused' }) : null,
    ),
    h(
      'dl',
      { class: 'stats' },
      STATES.map(([field, label]) =>
        h(
          'div',
          { class: 'stat stat-' + field },
          h('dt', { text: label }),
          h('dd', { 'data-testid': 'jobs-' + field, text: num(queue.jobs[field]) }),
        ),
      ),
    ),
    throughputView(queue.throughput),
    batchesView(queue.batches),
    deadLettersView(queue, role),
  );
}

function throughputView(throughput) {
  const completed = throughput.completed;
  const failed = throughput.failed;
  const minutes = completed.length;
  const most = Math.max(1, ...completed.map((value, i) => value + failed[i]));
  const label =
    'Jobs finished per minute over the last ' +
    minutes +
    ' minutes: ' +
    num(sum(completed)) +
    ' completed, ' +
    num(sum(failed)) +
    ' failed.';
  const chart = svg('svg', {
    viewBox: '0 0 ' + minutes * 10 + ' 40',
    preserveAspectRatio: 'none',
    class: 'chart',
    role: 'img',
    'aria-label': label,
  });
  const start = Date.parse(throughput.since);
  completed.forEach((value, i) => {
    const ok = (value / most) * 38;
    const bad = (failed[i] / most) * 38;
    const bar = svg('g', {});
    const title = svg('title', {});
    title.textContent = clock(new Date(start + i * 60000)).slice(0, 5) + ': ' + value + ' completed, ' + failed[i] + ' failed';
    bar.append(
      title,
      svg('rect', { x: i * 10 + 1, y: 40 - ok, width: 8, height: ok, class: 'ok' }),
      svg('rect', { x: i * 10 + 1, y: 40 - ok - bad, width: 8, height: bad, class: 'bad' }),
    );
    chart.append(bar);
  });
  return h(
    'section',
    { class: 'throughput' },
    h('h4', { text: 'Throughput, last ' + minutes + ' minutes' }),
    chart,
    h(
      'p',
      {},
      'completed ',
      h('strong', { 'data-testid': 'throughput-completed', text: num(sum(completed)) }),
      ', failed ',
      h('strong', { 'data-testid': 'throughput-failed', text: num(sum(failed)) }),
      '; this minute so far ',
      num(completed[minutes - 1]),
      ' completed, ',
      num(failed[minutes - 1]),
      ' failed',
    ),
  );
}

/** A table under a row of column titles; `body` is its tbody. */
function table(titles, body) {
  return h(
    'table',
    {},
    h(
      'thead',
      {},
      h(
        'tr',
        {},
        titles.map((title) => h('th', { scope: 'col', text: title })),
      ),
    ),
    body,
  );
}

function batchesView(batches) {
  const heading = h('h4', { text: 'Recent batches' });
  if (batches.length === 0) return h('section', {}, heading, h('p', { class: 'muted', text: 'No batches yet.' }));
  return h(
    'section',
    {},
    heading,
    table(
      ['Batch', 'Progress', 'Succeeded', 'Dead-lettered', 'Pending', 'Total', 'State'],
      h(
        'tbody',
        {},
        batches.map((batch) => {
          const finished = batch.succeeded + batch.deadLettered;
          const percent = batch.total ? Math.floor((finished / batch.total) * 100) : 0;
          const status = batch.done ? 'done' : batch.enqueuing ? 'adding' : 'running';
          return h(
            'tr',
            { 'data-testid': 'batch', 'data-batch-id': batch.batchId },
            h('th', { scope: 'row' }, h('code', { text: batch.batchId })),
            h(
              'td',
              { class: 'progress' },
              h('progress', {
                max: Math.max(1, batch.total),
                value: finished,
                'aria-label': 'batch ' + batch.batchId + ' ' + percent + '% finished',
              }),
              ' ',
              percent + '%',
            ),
            h('td', { class: 'n', 'data-testid': 'batch-succeeded', text: num(batch.succeeded) }),
            h('td', { class: 'n', 'data-testid': 'batch-dead-lettered', text: num(batch.deadLettered) }),
            h('td', { class: 'n', 'data-testid': 'batch-pending', text: num(batch.pending) }),
            h('td', { class: 'n', 'data-testid': 'batch-total', text: num(batch.total) }),
            h('td', { 'data-testid': 'batch-state', class: 'state-' + status, text: status }),
          );
        }),
      ),
    ),
  );
}

function deadLettersView(queue, role) {
  const letters = queue.deadLetters;
  const heading = h('h4', {}, 'Dead letters: ', h('span', { 'data-testid': 'dlq-total', text: num(letters.total) }));
  if (letters.total === 0) return h('section', {}, heading, h('p', { class: 'muted', text: 'None.' }));
  return h(
    'section',
    {},
    heading,
    table(
      ['Limit key', 'Status', 'Reason', 'Count', 'Latest', 'Example', 'Replay'],
      h(
        'tbody',
        {},
        letters.groups.map((group) => {
          const key = JSON.stringify([queue.name, group.limitKey, group.status, group.reason]);
          return h(
            'tr',
            {
              'data-testid': 'dlq-group',
              'data-limit-key': group.limitKey === null ? '' : group.limitKey,
              'data-status': group.status === null ? '' : group.status,
              'data-reason': group.reason,
            },
            h('td', {}, group.limitKey === null ? h('span', { class: 'muted', text: 'none' }) : h('code', { text: group.limitKey })),
            h('td', { class: 'n', text: group.status === null ? 'none' : group.status }),
            h('td', { text: group.reason }),
            h('td', { class: 'n', 'data-testid': 'dlq-count', text: num(group.count) }),
            h('td', { text: group.latest === null ? '—' : clock(new Date(group.latest)) }),
            h('td', { class: 'example', text: group.example === null ? '' : group.example }),
            h('td', {}, replayControl(queue.name, group, key, role)),
          );
        }),
      ),
    ),
  );
}

function replayControl(queue, group, key, role) {
  if (role !== 'admin') return h('span', { class: 'muted', text: 'admin only' });
  if (state.replaying === key) return h('button', { type: 'button', disabled: true, 'data-testid': 'dlq-replay', text: 'Replaying' });
  const armed = state.armed && state.armed.key === key && state.armed.until > Date.now();
  const what = num(group.count) + ' dead letter' + (group.count === 1 ? '' : 's') + ' (' + describe(group) + ')';
  return h(
    'button',
    {
      type: 'button',
      class: armed ? 'danger' : undefined,
      'data-testid': 'dlq-replay',
      'data-armed': armed ? 'true' : 'false',
      'data-focus-key': 'replay:' + key,
      'aria-label': (armed ? 'Confirm: replay ' : 'Replay ') + what,
      onclick: () => replay(queue, group, key),
    },
    armed ? 'Confirm replay of ' + num(group.count) : 'Replay',
  );
}

function rate(value) {
  return value === null || value === undefined ? '\u2014' : num(value) + '/s';
}

function limitsView(limits) {
  if (limits.length === 0) return h('p', { class: 'muted', text: 'No limit keys yet: none configured, and no worker has used one.' });
  return table(
    ['Limit key', 'Configured', 'Effective', 'In flight', 'Queued', 'Paused until', '429s (5 min)', 'Last seen'],
    h(
      'tbody',
      {},
      limits.map((limit) => {
        const configured = limit.configured
          ? rate(limit.configured.rate) + (limit.configured.concurrency ? ', ' + limit.configured.concurrency + ' at once' : '')
          : 'none';
        const override = limit.override
          ? ' (override ' +
            rate(limit.override.rate) +
            (limit.override.expiresInMs ? ', ' + Math.ceil(limit.override.expiresInMs / 60000) + ' min left' : '') +
            ')'
          : '';
        const paused = limit.paused ? 'paused by an operator' : limit.pausedUntil ? clock(new Date(limit.pausedUntil)) : '\u2014';
        return h(
          'tr',
          { 'data-testid': 'limit', 'data-limit-key': limit.key },
          h('th', { scope: 'row' }, h('code', { text: limit.key })),
          h('td', { 'data-testid': 'limit-configured', text: configured + override }),
          h('td', { class: 'n', 'data-testid': 'limit-effective-rate', text: rate(limit.effectiveRate) }),
          h('td', { class: 'n', 'data-testid': 'limit-in-flight', text: num(limit.inFlight) }),
          h('td', { class: 'n', 'data-testid': 'limit-queued', text: num(limit.queued) }),
          h('td', { 'data-testid': 'limit-paused-until', class: limit.paused || limit.pausedUntil ? 'warn' : undefined, text: paused }),
          h('td', { class: 'n', 'data-testid': 'limit-recent-429s', text: num(limit.recent429s) }),
          h('td', { text: limit.lastSeen ? clock(new Date(limit.lastSeen)) : '\u2014' }),
        );
      }),
    ),
  );
}

void refresh();
