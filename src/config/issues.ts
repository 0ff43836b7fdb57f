import type { Issue } from '../errors.js';

/** The parts of a zod issue this module reads (kept structural so it works for every zod issue type). */
interface ZodIssueLike {
  readonly code: string;
  readonly path: readonly PropertyKey[];
  readonly message: string;
  readonly keys?: readonly string[];
  /** For `invalid_key` (a record key failed its schema): the key's own issues. */
  readonly issues?: readonly { readonly message: string }[];
  /** For `invalid_type`: the type wanted. */
  readonly expected?: string;
}

/** A key that would make a path read another way (`a.b`, `]`, ``, ` x`, a control character) is quoted. */
const needsQuotes = (key: string) => key === '' || key !== key.trim() || /[.[\]"\x00-\x1f\x7f]/.test(key);

/** `['retry', 'attempts']` → `retry.attempts`; `['query', 'ids', 0]` → `query.ids[0]`; `['query', 'a.b']` → `query["a.b"]`. */
export function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const part of path) {
    if (typeof part === 'number') out += `[${part}]`;
    else if (needsQuotes(String(part))) out += `[${JSON.stringify(String(part))}]`;
    else out += out ? `.${String(part)}` : String(part);
  }
  return out;
}

/** Turns zod issues into sluice issues: one per problem, unknown fields named one by one. */
export function issuesFromZod(issues: readonly ZodIssueLike[]): Issue[] {
  const out: Issue[] = [];
  for (const issue of issues) {
    if (issue.code === 'unrecognized_keys' && issue.keys) {
      for (const key of issue.keys) out.push({ path: formatPath([...issue.path, key]), message: 'unknown field' });
      continue;
    }
    if (issue.code === 'invalid_key' && issue.issues?.length) {
      // zod's own message is "Invalid key in record"; the key schema's message says what is wrong.
      out.push({ path: formatPath(issue.path), message: issue.issues.map((inner) => inner.message).join('; ') });
      continue;
    }
    if (issue.code === 'invalid_type' && issue.message.endsWith('received undefined')) {
      // A field left out: "Invalid input: expected string, received undefined" says it less plainly.
      out.push({ path: formatPath(issue.path), message: `required${issue.expected ? ` (expected ${issue.expected})` : ''}` });
      continue;
    }
    out.push({ path: formatPath(issue.path), message: issue.message });
  }
  return out;
}
