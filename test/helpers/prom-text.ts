/**
 * A strict reader of the Prometheus text exposition format (0.0.4), for tests: it throws on
 * anything a Prometheus server would refuse or misread — a second HELP or TYPE for a name, a
 * family split in two, a sample before its TYPE or of another family, a bad name or label, a bad
 * escape, a duplicate series, a histogram whose buckets are not cumulative or lack +Inf — and
 * returns the samples, with label values unescaped.
 */

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

export interface Family {
  name: string;
  type: string;
  help: string | undefined;
  samples: Sample[];
}

export interface Exposition {
  families: Map<string, Family>;
  /** Samples named `name` whose labels include every label in `match`. */
  samples(name: string, match?: Record<string, string>): Sample[];
  /** The sum of those samples' values (0 when none). */
  sum(name: string, match?: Record<string, string>): number;
}

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
const TYPES = new Set(['counter', 'gauge', 'histogram', 'summary', 'untyped']);

function parseValue(text: string, where: string): number {
  if (text === '+Inf') return Infinity;
  if (text === '-Inf') return -Infinity;
  // Prometheus reads NaN in any case (Go's ParseFloat); prom-client writes `Nan`.
  if (text.toLowerCase() === 'nan') return NaN;
  if (!/^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(text)) throw new Error(`${where}: bad value ${JSON.stringify(text)}`);
  return Number(text);
}

/** `{a="x",b="y\"z"}` from index `start` (at `{`): the labels and the index after `}`. */
function parseLabels(line: string, start: number, where: string): { labels: Record<string, string>; end: number } {
  const labels: Record<string, string> = {};
  let i = start + 1;
  while (line[i] !== '}') {
    const eq = line.indexOf('=', i);
    if (eq < 0) throw new Error(`${where}: label without =`);
    const name = line.slice(i, eq);
    if (!LABEL_NAME.test(name)) throw new Error(`${where}: bad label name ${JSON.stringify(name)}`);
    if (Object.hasOwn(labels, name)) throw new Error(`${where}: label ${name} twice`);
    if (line[eq + 1] !== '"') throw new Error(`${where}: label ${name} value not quoted`);
    let value = '';
    let j = eq + 2;
    for (; ; j++) {
      const char = line[j];
      if (char === undefined) throw new Error(`${where}: unterminated label value`);
      if (char === '"') break;
      if (char === '\\') {
        const next = line[++j];
        if (next === '\\') value += '\\';
        else if (next === '"') value += '"';
        else if (next === 'n') value += '\n';
        else throw new Error(`${where}: bad escape \\${next ?? ''} in label ${name}`);
      } else {
        value += char;
      }
    }
    labels[name] = value;
    i = j + 1;
    if (line[i] === ',') i++;
    else if (line[i] !== '}') throw new Error(`${where}: expected , or } after label ${name}`);
  }
  return { labels, end: i + 1 };
}

function familyOf(sample: string, families: Map<string, Family>): Family | undefined {
  for (const suffix of ['_bucket', '_sum', '_count']) {
    if (!sample.endsWith(suffix)) continue;
    const family = families.get(sample.slice(0, -suffix.length));
    if (family && (family.type === 'histogram' || (family.type === 'summary' && suffix !== '_bucket'))) return family;
  }
  return families.get(sample);
}

export function parseExposition(text: string): Exposition {
  if (!text.endsWith('\n')) throw new Error('the exposition must end with a newline');
  const families = new Map<string, Family>();
  const closed = new Set<string>();
  const series = new Set<string>();
  let current: Family | undefined;
  const enter = (name: string, where: string): Family => {
    if (current?.name === name) return current;
    if (current) closed.add(current.name);
    if (closed.has(name)) throw new Error(`${where}: family ${name} appears in two places`);
    let family = families.get(name);
    if (!family) {
      family = { name, type: 'untyped', help: undefined, samples: [] };
      families.set(name, family);
    }
    current = family;
    return family;
  };

  text.split('\n').forEach((line, index) => {
    const where = `line ${index + 1} (${JSON.stringify(line.slice(0, 120))})`;
    if (line === '') return;
    const meta = /^# (HELP|TYPE) (\S+) ?(.*)$/.exec(line);
    if (meta) {
      const [, kind, name = '', rest = ''] = meta;
      if (!NAME.test(name)) throw new Error(`${where}: bad metric name`);
      const family = enter(name, where);
      if (kind === 'HELP') {
        if (family.help !== undefined) throw new Error(`${where}: second HELP for ${name}`);
        if (/\\[^\\n]/.test(rest.replace(/\\\\/g, ''))) throw new Error(`${where}: bad escape in HELP`);
        family.help = rest.replace(/\\(\\|n)/g, (_, char: string) => (char === 'n' ? '\n' : '\\'));
      } else {
        if (family.samples.length > 0) throw new Error(`${where}: TYPE after samples of ${name}`);
        if (!TYPES.has(rest)) throw new Error(`${where}: bad type ${rest}`);
        if (family.type !== 'untyped') throw new Error(`${where}: second TYPE for ${name}`);
        family.type = rest;
      }
      return;
    }
    if (line.startsWith('#')) return;
    const nameEnd = line.search(/[{ ]/);
    if (nameEnd <= 0) throw new Error(`${where}: no sample name`);
    const name = line.slice(0, nameEnd);
    if (!NAME.test(name)) throw new Error(`${where}: bad sample name`);
    const { labels, end } = line[nameEnd] === '{' ? parseLabels(line, nameEnd, where) : { labels: {}, end: nameEnd };
    const parts = line.slice(end).trim().split(' ');
    if (line[end] !== ' ' || parts.length < 1 || parts.length > 2) throw new Error(`${where}: expected " value [timestamp]"`);
    const value = parseValue(parts[0]!, where);
    const family = familyOf(name, families) ?? enter(name, where);
    if (current !== family) throw new Error(`${where}: sample of ${family.name} outside its family's lines`);
    const key = `${name}${JSON.stringify(Object.entries(labels).sort(([a], [b]) => (a < b ? -1 : 1)))}`;
    if (series.has(key)) throw new Error(`${where}: duplicate series`);
    series.add(key);
    family.samples.push({ name, labels, value });
  });

  for (const family of families.values()) {
    if (family.type === 'histogram') checkHistogram(family);
  }

  const matches = (sample: Sample, match: Record<string, string>): boolean =>
    Object.entries(match).every(([label, value]) => sample.labels[label] === value);
  const samples = (name: string, match: Record<string, string> = {}): Sample[] => {
    const family = familyOf(name, families);
    return (family?.samples ?? []).filter((sample) => sample.name === name && matches(sample, match));
  };
  return {
    families,
    samples,
    sum: (name, match) => samples(name, match).reduce((total, sample) => total + sample.value, 0),
  };
}

/** Per label set: `le` on every bucket, cumulative counts, a +Inf bucket equal to _count, a _sum. */
function checkHistogram(family: Family): void {
  const groups = new Map<string, { buckets: [number, number][]; count?: number; sum?: number }>();
  for (const sample of family.samples) {
    const { le, ...rest } = sample.labels;
    const key = JSON.stringify(Object.entries(rest).sort(([a], [b]) => (a < b ? -1 : 1)));
    const group = groups.get(key) ?? { buckets: [] };
    groups.set(key, group);
    if (sample.name.endsWith('_bucket')) {
      if (le === undefined) throw new Error(`${family.name}: a bucket without le`);
      group.buckets.push([parseValue(le, `${family.name} le`), sample.value]);
    } else if (sample.name.endsWith('_count')) {
      group.count = sample.value;
    } else {
      group.sum = sample.value;
    }
  }
  for (const [key, group] of groups) {
    const buckets = group.buckets.sort(([a], [b]) => a - b);
    if (buckets.at(-1)?.[0] !== Infinity) throw new Error(`${family.name}${key}: no +Inf bucket`);
    for (let i = 1; i < buckets.length; i++) {
      if (buckets[i]![1] < buckets[i - 1]![1]) throw new Error(`${family.name}${key}: buckets not cumulative`);
    }
    if (group.count !== buckets.at(-1)![1])
      throw new Error(`${family.name}${key}: _count ${group.count} is not the +Inf bucket ${buckets.at(-1)![1]}`);
    if (group.sum === undefined) throw new Error(`${family.name}${key}: no _sum`);
  }
}

/**
 * prom-client's default gauges whose names end in `_total` (kept as prom-client names them: stock
 * Node.js dashboards query them). Prometheus's linter flags exactly these; nothing of sluice's may join them.
 */
export const PROM_CLIENT_MISNAMED_GAUGES: readonly string[] = [
  'nodejs_active_handles_total',
  'nodejs_active_requests_total',
  'nodejs_active_resources_total',
];

const SNAKE_METRIC = /^[a-z_:][a-z0-9_:]*$/;
const SNAKE_LABEL = /^[a-z_][a-z0-9_]*$/;

/**
 * What breaks Prometheus's naming conventions (prometheus.io/docs/practices/naming): names and label
 * names in snake_case (no reserved `__` labels), `_total` on counters and only on counters.
 */
export function namingProblems(exposition: Exposition): string[] {
  const problems: string[] = [];
  for (const family of exposition.families.values()) {
    const { name, type } = family;
    if (!SNAKE_METRIC.test(name)) problems.push(`${name}: not snake_case`);
    if (type === 'untyped') problems.push(`${name}: no TYPE`);
    if (type === 'counter' && !name.endsWith('_total')) problems.push(`${name}: a counter without _total`);
    if (type !== 'counter' && name.endsWith('_total') && !PROM_CLIENT_MISNAMED_GAUGES.includes(name))
      problems.push(`${name}: a ${type} ending in _total`);
    const labels = new Set(family.samples.flatMap((sample) => Object.keys(sample.labels)));
    for (const label of labels) {
      if (!SNAKE_LABEL.test(label) || label.startsWith('__')) problems.push(`${name}: label ${label} is not snake_case`);
    }
  }
  return problems;
}
