import { formatPath } from '../config/issues.js';
import type { Issue } from '../errors.js';

/**
 * How deep objects and arrays may nest in an operation, the operation itself being the first
 * level. Ample for any API body (`json`), `meta` or response schema; deeper values are refused
 * because JSON.parse builds them happily while JSON.stringify, validation and templates recurse
 * and fail with "Maximum call stack size exceeded" (from about 5,000 levels).
 */
export const MAX_NESTING = 64;

/** Path segments shown before `…` in a message about a value nested too deep. */
const SHOWN_SEGMENTS = 8;

interface Frame {
  value: object;
  depth: number;
  key: string | number | undefined;
  parent: Frame | undefined;
}

/**
 * Where `value` first nests objects and arrays deeper than `max` levels (it is the first), or
 * undefined. Walks with a stack of its own, so no depth can overflow it.
 */
export function nestingIssue(value: unknown, max = MAX_NESTING): Issue | undefined {
  if (typeof value !== 'object' || value === null || !deeperThan(value, 1, max)) return undefined;
  const stack: Frame[] = [{ value, depth: 1, key: undefined, parent: undefined }];
  for (let frame = stack.pop(); frame !== undefined; frame = stack.pop()) {
    if (frame.depth > max)
      return { path: pathOf(frame), message: `objects and arrays nested more than ${max} levels deep (the operation is the first)` };
    const push = (key: string | number, child: unknown) => {
      if (typeof child === 'object' && child !== null) stack.push({ value: child, depth: frame!.depth + 1, key, parent: frame });
    };
    if (Array.isArray(frame.value)) frame.value.forEach((child, i) => push(i, child));
    else for (const key of Object.keys(frame.value)) push(key, (frame.value as Record<string, unknown>)[key]);
  }
  return undefined;
}

/**
 * Whether `value`, at level `depth`, nests deeper than `max`: the check every operation passes
 * (at enqueue and in the worker), so it makes no objects of its own; where it fails, nestingIssue
 * walks again to name the place. It recurses at most `max` levels, whatever the value's depth.
 */
function deeperThan(value: object, depth: number, max: number): boolean {
  if (depth > max) return true;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i += 1) {
      const child: unknown = value[i];
      if (typeof child === 'object' && child !== null && deeperThan(child, depth + 1, max)) return true;
    }
    return false;
  }
  for (const key in value) {
    if (!Object.hasOwn(value, key)) continue;
    const child: unknown = (value as Record<string, unknown>)[key];
    if (typeof child === 'object' && child !== null && deeperThan(child, depth + 1, max)) return true;
  }
  return false;
}

/** `json.a[0].b…`: the first segments of the path to a frame. */
function pathOf(frame: Frame): string {
  const segments: (string | number)[] = [];
  for (let at: Frame | undefined = frame; at?.key !== undefined; at = at.parent) segments.push(at.key);
  segments.reverse();
  const shown = formatPath(segments.slice(0, SHOWN_SEGMENTS));
  return segments.length > SHOWN_SEGMENTS ? `${shown}…` : shown;
}
