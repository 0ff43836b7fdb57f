import { z } from 'zod';
import type { AnyRoute } from './route.js';

/** JSON Schema of a zod schema as a request would be written (inputs: defaults optional, text before coercion). */
function jsonSchema(schema: z.ZodType): Record<string, unknown> {
  const { $schema: _ignored, ...rest } = z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any', target: 'openapi-3.0' }) as Record<
    string,
    unknown
  >;
  return rest;
}

/** `/v1/operations/:id` → `/v1/operations/{id}`. */
const openApiPath = (url: string) => url.replace(/:([A-Za-z_]+)/g, '{$1}');

function parameters(route: AnyRoute): unknown[] {
  const out: unknown[] = [];
  const add = (where: 'path' | 'query', schema: z.ZodType | undefined) => {
    if (!schema) return;
    const doc = jsonSchema(schema) as { properties?: Record<string, Record<string, unknown>>; required?: string[] };
    for (const [name, property] of Object.entries(doc.properties ?? {})) {
      const { description, ...propertySchema } = property;
      out.push({
        name,
        in: where,
        required: where === 'path' || (doc.required ?? []).includes(name),
        schema: propertySchema,
        ...(typeof description === 'string' ? { description } : {}),
      });
    }
  };
  add('path', route.params);
  add('query', route.query);
  return out;
}

function responseHeaders(headers: Record<string, string>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(headers).map(([name, description]) => [name, { description, schema: { type: 'string' } }]));
}

/** The OpenAPI 3 document of the routes: paths, parameters, bodies and answers, from their zod schemas. */
export function openApiDocument(routes: readonly AnyRoute[], info: { title: string; version: string }): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const route of routes) {
    const responses: Record<string, unknown> = {};
    for (const [status, doc] of Object.entries(route.responses)) {
      responses[status] = {
        description: doc.description,
        ...(doc.schema ? { content: { [doc.contentType ?? 'application/json']: { schema: jsonSchema(doc.schema) } } } : {}),
        ...(doc.headers ? { headers: responseHeaders(doc.headers) } : {}),
      };
    }
    if (route.role !== null) {
      responses['401'] ??= { description: 'missing or unknown token (code UNAUTHORIZED)' };
      responses['403'] ??= { description: `the token's role may not do this: needs ${route.role} (code FORBIDDEN)` };
      responses['429'] ??= { description: 'too many failed tokens from this address: see Retry-After (code TOO_MANY_AUTH_FAILURES)' };
    }
    let requestBody: unknown;
    if (route.body) requestBody = { required: true, content: { 'application/json': { schema: jsonSchema(route.body) } } };
    else if (route.bodyDoc) {
      requestBody = {
        required: true,
        description: route.bodyDoc.description,
        content: Object.fromEntries(Object.entries(route.bodyDoc.content).map(([type, schema]) => [type, { schema: jsonSchema(schema) }])),
      };
    }
    const operation = {
      summary: route.summary,
      tags: [route.tag],
      ...(route.role === null ? { security: [] } : { 'x-sluice-role': route.role }),
      parameters: parameters(route),
      ...(requestBody ? { requestBody } : {}),
      responses,
    };
    (paths[openApiPath(route.url)] ??= {})[route.method.toLowerCase()] = operation;
  }
  return {
    openapi: '3.0.3',
    info: {
      ...info,
      description:
        'Enqueue and follow rate-limited HTTP operations. Authenticate with `Authorization: Bearer <token>`; tokens and their roles (read, enqueue, admin) come from SLUICE_API_TOKENS. Every error is JSON with a stable `code`.',
    },
    components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
    security: [{ bearer: [] }],
    paths,
  };
}
