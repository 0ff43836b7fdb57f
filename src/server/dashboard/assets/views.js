// The dashboard's views: a queue (job counts, throughput chart, recent batches, dead-letter groups
// with their replay buttons) and the limit keys, drawn from one /v1/overview reading. They build
// elements with dom.js and hold no state: what the replay buttons show and do comes in as `replays`
// from app.js, which owns the state.

import { clock, h, num, sum, svg, table } from './dom.js';

const STATES = [
  ['waiting', 'waiting'],
  ['active', 'active'],
  ['delayed', 'delayed'],
  ['paused', 'paused'],
  ['completed', 'completed'],
  ['failed', 'failed'],
];

/** A dead-letter group in words, for the replay button and the notice after a replay. */
export function describe(group) {
  return (
    (group.limitKey === null ? 'no limit key' : group.limitKey) +
    ', ' +
    (group.status === null ? 'no status' : 'status ' + group.status) +
    ', ' +
    group.reason
  );
}

/**
 * One queue. `replays` is the page's state as the replay buttons need it: `replaying`, the key of the
 * group being replayed (or null); `armed(key)`, whether that group's button waits for its confirming
 * click; `replay(queue, group, key)`, what a click does.
 */
export function queueView(queue, index, role, replays) {
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
    deadLettersView(queue, role, replays),
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

function deadLettersView(queue, role, replays) {
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
            h('td', {}, replayControl(queue.name, group, key, role, replays)),
          );
        }),
      ),
    ),
  );
}

function replayControl(queue, group, key, role, replays) {
  if (role !== 'admin') return h('span', { class: 'muted', text: 'admin only' });
  if (replays.replaying === key) return h('button', { type: 'button', disabled: true, 'data-testid': 'dlq-replay', text: 'Replaying' });
  const armed = replays.armed(key);
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
      onclick: () => replays.replay(queue, group, key),
    },
    armed ? 'Confirm replay of ' + num(group.count) : 'Replay',
  );
}

function rate(value) {
  return value === null || value === undefined ? '\u2014' : num(value) + '/s';
}

/** A key's circuit breaker in a cell: off, closed, or open since when, the next probe and who waits. */
function circuitText(circuit) {
  if (!circuit) return 'off';
  if (circuit.state === 'closed') return 'closed';
  const probe = circuit.nextProbeAt ? ', next probe ' + clock(new Date(circuit.nextProbeAt)) : '';
  return 'open since ' + clock(new Date(circuit.openSince)) + probe + ', ' + num(circuit.waiting) + ' waiting';
}

export function limitsView(limits) {
  if (limits.length === 0) return h('p', { class: 'muted', text: 'No limit keys yet: none configured, and no worker has used one.' });
  return table(
    ['Limit key', 'Configured', 'Effective', 'In flight', 'Queued', 'Paused until', '429s (5 min)', 'Circuit', 'Last seen'],
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
          h('td', {
            'data-testid': 'limit-circuit',
            class: limit.circuit && limit.circuit.state === 'open' ? 'warn' : undefined,
            text: circuitText(limit.circuit),
          }),
          h('td', { text: limit.lastSeen ? clock(new Date(limit.lastSeen)) : '\u2014' }),
        );
      }),
    ),
  );
}
