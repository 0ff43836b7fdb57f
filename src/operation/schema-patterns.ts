/**
 * Every regular expression of a draft-07 schema with its place (`pattern` values, `patternProperties`
 * keys; `propertyNames` is a schema like any other), so that a pattern sluice will not run is
 * reported where it is written. Only schema positions are visited: a `pattern` inside `enum`,
 * `const` or `default` is data.
 */

/** Keywords whose value is one schema. */
const ONE = ['additionalItems', 'additionalProperties', 'contains', 'propertyNames', 'if', 'then', 'else', 'not', 'items'];
/** Keywords whose value is a list of schemas. */
const LIST = ['allOf', 'anyOf', 'oneOf', 'items'];
/** Keywords whose value maps names to schemas (`dependencies` may also map to a list of names). */
const MAP = ['properties', 'patternProperties', 'definitions', '$defs', 'dependencies'];

export interface SchemaPattern {
  path: (string | number)[];
  pattern: string;
}

export function schemaPatterns(schema: unknown, path: (string | number)[] = []): SchemaPattern[] {
  if (typeof schema !== 'object' || schema === null || Array.isArray(schema)) return [];
  const node = schema as Record<string, unknown>;
  const found: SchemaPattern[] = [];
  if (typeof node.pattern === 'string') found.push({ path: [...path, 'pattern'], pattern: node.pattern });
  if (isObject(node.patternProperties)) {
    for (const key of Object.keys(node.patternProperties)) found.push({ path: [...path, 'patternProperties', key], pattern: key });
  }
  for (const keyword of ONE) found.push(...schemaPatterns(node[keyword], [...path, keyword]));
  for (const keyword of LIST) {
    const list = node[keyword];
    if (Array.isArray(list)) list.forEach((item, index) => found.push(...schemaPatterns(item, [...path, keyword, index])));
  }
  for (const keyword of MAP) {
    const map = node[keyword];
    if (isObject(map)) for (const [key, value] of Object.entries(map)) found.push(...schemaPatterns(value, [...path, keyword, key]));
  }
  return found;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
