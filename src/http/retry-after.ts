/** Longest wait we accept from a server; anything longer is treated as this. */
export const MAX_RETRY_AFTER_MS = 24 * 60 * 60 * 1_000;

/**
 * Parses a `Retry-After` header value: delay-seconds (`120`) or an HTTP date
 * (`Wed, 21 Oct 2026 07:28:00 GMT`). Returns milliseconds from `now`, never negative, capped at
 * 24 h; `undefined` when the value is missing or unreadable.
 */
export function parseRetryAfter(value: string | undefined | null, now: number = Date.now()): number | undefined {
  if (value === undefined || value === null) return undefined;
  const text = value.trim();
  if (text === '') return undefined;
  if (/^\d+(\.\d+)?$/.test(text)) return Math.min(Math.ceil(Number(text) * 1_000), MAX_RETRY_AFTER_MS);
  const at = parseHttpDate(text, now);
  if (at === undefined) return undefined;
  return Math.min(Math.max(0, at - now), MAX_RETRY_AFTER_MS);
}

const MONTHS = ['jan', 'feb', 'mar', 'apr', 'may', 'jun', 'jul', 'aug', 'sep', 'oct', 'nov', 'dec'];
const DAY = '(?:mon|tue|wed|thu|fri|sat|sun)';
const MONTH = `(${MONTHS.join('|')})`;
const TIME = String.raw`(\d\d):(\d\d):(\d\d)`;
// The three forms of RFC 9110 §5.6.7, and nothing else: Date.parse would read "Wed 2027" as a date.
const IMF_FIXDATE = new RegExp(String.raw`^${DAY}, (\d\d) ${MONTH} (\d{4}) ${TIME} GMT$`, 'i');
const RFC_850 = new RegExp(String.raw`^(?:mon|tues|wednes|thurs|fri|satur|sun)day, (\d\d)-${MONTH}-(\d\d) ${TIME} GMT$`, 'i');
const ASCTIME = new RegExp(String.raw`^${DAY} ${MONTH} ( \d|\d\d) ${TIME} (\d{4})$`, 'i');

/** An HTTP-date (IMF-fixdate, or the obsolete RFC 850 and asctime forms) as epoch milliseconds. */
function parseHttpDate(text: string, now: number = Date.now()): number | undefined {
  let match = IMF_FIXDATE.exec(text);
  if (match) return utc(Number(match[3]), match[2]!, Number(match[1]), match.slice(4));
  match = RFC_850.exec(text);
  if (match) return utc(fullYear(Number(match[3]), now), match[2]!, Number(match[1]), match.slice(4));
  match = ASCTIME.exec(text);
  if (match) return utc(Number(match[6]), match[1]!, Number(match[2]), match.slice(3, 6));
  return undefined;
}

/** RFC 9110: a two-digit year more than 50 years in the future is the latest such year in the past. */
function fullYear(twoDigits: number, now: number): number {
  const year = new Date(now).getUTCFullYear();
  const candidate = year - (year % 100) + twoDigits;
  return candidate > year + 50 ? candidate - 100 : candidate;
}

/** Undefined for a date that does not exist (31 Feb, 25:00). A leap second (:60) is the next second. */
function utc(year: number, month: string, day: number, clock: string[]): number | undefined {
  const [hours, minutes, seconds] = clock.map(Number) as [number, number, number];
  const monthIndex = MONTHS.indexOf(month.toLowerCase());
  if (hours > 23 || minutes > 59 || seconds > 60) return undefined;
  // setUTCFullYear, unlike Date.UTC, takes years below 100 as they are.
  const date = new Date(0);
  date.setUTCFullYear(year, monthIndex, day);
  if (date.getUTCMonth() !== monthIndex) return undefined;
  date.setUTCHours(hours, minutes, seconds);
  return date.getTime();
}
