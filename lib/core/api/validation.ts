/**
 * Turning a zod failure into one OpenAI-style 400 that names the field, what it must be, and what was sent; and
 * the JSON body itself.
 */
import type { z } from 'zod';
import { ApiError, badRequest, serverError } from './errors';
import { describe } from './describe';

/** Parses a request body; any JSON value is accepted here, the endpoint parsers check the shape. */
export function parseJsonBody(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch (e) {
    const detail = e instanceof Error ? e.message : String(e);
    throw badRequest(`request body is not valid JSON: ${detail}`, null, 'invalid_json');
  }
}

/** Runs a parser; anything but an ApiError is a bug in the parser, never the client's fault, and leaks nothing. */
export function guard<T>(fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    if (e instanceof ApiError) throw e;
    throw serverError(`internal error while validating the request: ${e instanceof Error ? e.name : 'unknown'}`);
  }
}

export function requireObject(body: unknown): Record<string, unknown> {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw badRequest(`request body must be a JSON object, got ${describe(body)}`, null, 'invalid_body');
  }
  return body as Record<string, unknown>;
}

export function validate<S extends z.ZodType>(schema: S, body: Record<string, unknown>): z.infer<S> {
  const result = schema.safeParse(body);
  if (result.success) return result.data;
  const first = result.error.issues[0];
  if (first === undefined) throw badRequest('request body is invalid');
  const { path, message } = innermost(first, []);
  const field = formatPath(path);
  const value = valueAt(body, path);
  const text =
    value === undefined ? `${field} is required: it ${message}` : `${field} ${message}, got ${describe(value)}`;
  throw badRequest(text, field, null);
}

/**
 * A union that fails reports only "none matched"; when one branch got past the type check
 * (an array of parts with a bad part, two prompts), its issue says far more, so report that one.
 */
function innermost(issue: z.core.$ZodIssue, prefix: PropertyKey[]): { path: PropertyKey[]; message: string } {
  const path = [...prefix, ...issue.path];
  if (issue.code === 'invalid_union') {
    for (const branch of issue.errors) {
      const deeper = branch[0];
      // A root-level type mismatch means the branch never applied; anything else means it did.
      if (deeper !== undefined && (deeper.path.length > 0 || deeper.code !== 'invalid_type')) {
        return innermost(deeper, path);
      }
    }
  }
  return { path, message: issue.message };
}

export function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const seg of path) {
    if (typeof seg === 'number') out += `[${seg}]`;
    else out += out === '' ? String(seg) : `.${String(seg)}`;
  }
  return out;
}

function valueAt(root: unknown, path: readonly PropertyKey[]): unknown {
  let v: unknown = root;
  for (const seg of path) {
    if (typeof v !== 'object' || v === null) return undefined;
    // Own properties only, so a key like "constructor" never reaches the prototype.
    if (!Object.prototype.hasOwnProperty.call(v, seg)) return undefined;
    v = (v as Record<PropertyKey, unknown>)[seg];
  }
  return v;
}

/** A cache of schemas keyed by configuration (max_tokens limit), so each is built once. */
export function schemaCache<T>(build: (key: number) => T): (key: number) => T {
  const cache = new Map<number, T>();
  return (key) => {
    let s = cache.get(key);
    if (s === undefined) {
      s = build(key);
      cache.set(key, s);
    }
    return s;
  };
}
