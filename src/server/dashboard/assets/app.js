// The dashboard page's script, served at /assets/app.js as a module (no framework, no build step).
// It polls GET /v1/overview every 2 s while the tab is visible and draws the queues, batches, dead
// letters and limit keys. It builds the DOM from elements and textContent only, so nothing the
// server sends is ever parsed as markup.
//
// This module holds the page's state: the polling, signing in and out, and replaying a dead-letter
// group. Its neighbours, served from /assets/ too: api.js (requests), dom.js (element builders and
// formatting), views.js (what a reading looks like).

import { api } from './api.js';
import { byId, clock, num } from './dom.js';
import { describe, limitsView, queueView } from './views.js';

const REFRESH_MS = 2000;
const CONFIRM_MS = 5000;

const state = { overview: null, timer: undefined, inFlight: false, signedOut: false, lastGood: null, armed: null, replaying: null };

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
    // A session can end while the page is open (idle, its absolute limit, sign-out elsewhere): say why.
    if (error.status === 401) showSignIn(state.lastGood ? error.message : '');
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

/** Whether the replay button of the group `key` has had its first click and waits for the second. */
function armed(key) {
  return Boolean(state.armed && state.armed.key === key && state.armed.until > Date.now());
}

async function replay(queue, group, key) {
  if (!armed(key)) {
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

// ---- drawing ---------------------------------------------------------------------------------

function render() {
  const overview = state.overview;
  if (!overview) return;
  const focused = document.activeElement && document.activeElement.dataset ? document.activeElement.dataset.focusKey : undefined;
  byId('loading').hidden = true;
  byId('signin').hidden = true;
  byId('session').hidden = false;
  byId('content').hidden = false;
  const replays = { replaying: state.replaying, armed, replay };
  byId('role').textContent = 'signed in: ' + overview.viewer.role;
  const updated = byId('updated');
  updated.textContent = 'Updated ' + clock(new Date(overview.generatedAt)) + ', every 2 s while this tab is visible.';
  updated.setAttribute('data-generated-at', overview.generatedAt);
  byId('queues').replaceChildren(...overview.queues.map((queue, index) => queueView(queue, index, overview.viewer.role, replays)));
  byId('limits').replaceChildren(limitsView(overview.limits));
  if (focused) {
    const again = Array.from(document.querySelectorAll('[data-focus-key]')).find((element) => element.dataset.focusKey === focused);
    if (again) again.focus();
  }
}

void refresh();
