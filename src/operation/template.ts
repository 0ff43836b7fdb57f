import { atPath } from './paginate-schema.js';

/**
 * Operation templates: every string in a JSON value may hold `{{path}}` placeholders, resolved
 * against a context such as `{ item }` (`{{item.id}}`, `{{item.owner.email}}`, `{{item}}`).
 * A string that is exactly one placeholder takes the value itself, so numbers, booleans and
 * objects keep their JSON type; inside a longer string the value is written as text (objects as
 * JSON). A placeholder with no value renders as an empty string inside text, or is dropped
 * (undefined) when it is the whole string.
 */
const PLACEHOLDER = /\{\{\s*([A-Za-z_][\w.]*)\s*\}\}/g;
const WHOLE = /^\{\{\s*([A-Za-z_][\w.]*)\s*\}\}$/;

export function renderTemplate(template: unknown, context: Record<string, unknown>): unknown {
  if (typeof template === 'string') {
    const whole = WHOLE.exec(template);
    if (whole) return atPath(context, whole[1]!);
    return template.replace(PLACEHOLDER, (_, path: string) => asText(atPath(context, path)));
  }
  if (Array.isArray(template)) return template.map((entry) => renderTemplate(entry, context));
  if (template !== null && typeof template === 'object') {
    const out: Record<string, unknown> = {};
    for (const [key, value] of Object.entries(template)) {
      const rendered = renderTemplate(value, context);
      if (rendered !== undefined) out[key] = rendered;
    }
    return out;
  }
  return template;
}

/** The template with every placeholder replaced by a sample text, to validate its shape before any item exists. */
export function sampleOfTemplate(template: unknown): unknown {
  if (typeof template === 'string') return template.replace(PLACEHOLDER, '1');
  if (Array.isArray(template)) return template.map(sampleOfTemplate);
  if (template !== null && typeof template === 'object') {
    return Object.fromEntries(Object.entries(template).map(([key, value]) => [key, sampleOfTemplate(value)]));
  }
  return template;
}

function asText(value: unknown): string {
  if (value === undefined || value === null) return '';
  return typeof value === 'object' ? JSON.stringify(value) : String(value);
}
