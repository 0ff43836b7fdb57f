import type { FastifyReply, FastifyRequest } from 'fastify';
import type { z } from 'zod';
import type { Role } from './api-tokens.js';
import type { BodyEncoding } from './body-encoding.js';

/** A documented response: its schema (JSON) or its media type (streams). */
export interface ResponseDoc {
  description: string;
  schema?: z.ZodType;
  /** Default application/json. */
  contentType?: string;
  /** Response headers worth documenting, by name: their description (values are strings). */
  headers?: Record<string, string>;
}

/** A documented request body, for bodies the route reads itself (NDJSON streams). */
export interface BodyDoc {
  description: string;
  content: Record<string, z.ZodType>;
}

export interface RouteInput<P, Q, B> {
  params: P;
  query: Q;
  body: B;
}

/**
 * One API route: what it needs (role, params, query, body, each a zod schema) and what it answers.
 * The same table registers the routes, checks their input and generates `/openapi.json`.
 */
export interface Route<P = unknown, Q = unknown, B = unknown> {
  method: 'GET' | 'POST' | 'PUT' | 'DELETE';
  url: string;
  /** The OpenAPI operationId: camelCase, stable (generated clients name their methods after it). */
  operationId: string;
  /** The role a caller needs; null: no token needed. */
  role: Role | null;
  summary: string;
  tag: string;
  params?: z.ZodType<P>;
  query?: z.ZodType<Q>;
  /** A JSON body, parsed by fastify, then checked with this schema. */
  body?: z.ZodType<B>;
  /** A body the handler reads itself (set `rawBody` to leave it unparsed). */
  bodyDoc?: BodyDoc;
  /** Content-Encodings the body may come in, decoded as it streams (default none: 415). */
  bodyEncodings?: readonly BodyEncoding[];
  /** The largest body this route reads, in bytes, when smaller than the server's (compressed or decoded). */
  bodyLimitBytes?: number;
  /** The body must be read within this many ms of the headers (else 408), when shorter than the request timeout. */
  bodyTimeoutMs?: number;
  /** Runs before the body is read (routes with no role): refuse early, e.g. an address with too many failed sign-ins. */
  beforeBody?(request: FastifyRequest): Promise<void>;
  responses: Record<number, ResponseDoc>;
  handler(request: FastifyRequest, reply: FastifyReply, input: RouteInput<P, Q, B>): Promise<unknown>;
}

/** Keeps the generic types of one route (a table of routes holds them as `Route<any, any, any>`). */
export function route<P, Q, B>(spec: Route<P, Q, B>): Route<P, Q, B> {
  return spec;
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type AnyRoute = Route<any, any, any>;
