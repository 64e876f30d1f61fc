/**
 * What every request meets before its route: the path (trailing slashes dropped, in linear time), the request
 * id it is answered under, the API key, the content type and the body size limit.
 */
import { payloadTooLarge, unauthorized, unsupportedMediaType, ApiError } from './errors';

/**
 * The path of a request URL without its query, fragment and trailing slashes ('/' stays '/'). A scan from each
 * end, never a regex: a path of 15,000 slashes costs microseconds, not the quadratic backtracking of /\/+$/.
 */
export function normalizePath(url: string): string {
  let start = 0;
  const scheme = url.indexOf('://');
  if (scheme !== -1) {
    const slash = url.indexOf('/', scheme + 3);
    start = slash === -1 ? url.length : slash;
  }
  let end = url.length;
  for (let i = start; i < url.length; i++) {
    const c = url.charCodeAt(i);
    // '?' or '#'
    if (c === 63 || c === 35) {
      end = i;
      break;
    }
  }
  while (end > start && url.charCodeAt(end - 1) === 47) end--;
  return end === start ? '/' : url.slice(start, end);
}

/** Routes under /v1/ need the API key (where there is one); /healthz and unknown paths answer without it. */
export function requiresAuth(path: string): boolean {
  return path.startsWith('/v1/');
}

const CLIENT_REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/** The client's x-request-id when it is a sane token, else a fresh one: every response carries it back. */
export function requestIdFor(header: string | undefined | null, newId: () => string): string {
  if (header && CLIENT_REQUEST_ID.test(header)) return header;
  return `req_${newId().replace(/-/g, '')}`;
}

/** Compares in time that depends only on the key's length, not on where a guess first differs. */
function sameSecret(given: string, key: string): boolean {
  let diff = given.length ^ key.length;
  for (let i = 0; i < key.length; i++) diff |= (i < given.length ? given.charCodeAt(i) : 0) ^ key.charCodeAt(i);
  return diff === 0;
}

/**
 * The key from `Authorization: Bearer <key>` (the scheme in any case, as RFC 9110 says) or `x-api-key: <key>`
 * (API Gateway's header), so the same client settings work against the embedded server and the deployed API.
 */
export function presentedKey(authorization: string | undefined, xApiKey: string | undefined): string | null {
  if (authorization) {
    const match = /^\s*bearer\s+(\S+)\s*$/i.exec(authorization.length <= 4096 ? authorization : '');
    if (match) return match[1]!;
  }
  if (xApiKey) return xApiKey.trim();
  return null;
}

export function authenticate(key: string | null, apiKey: string | null): void {
  if (apiKey === null) return;
  if (key !== null && sameSecret(key, apiKey)) return;
  throw unauthorized('missing or wrong API key: send "Authorization: Bearer <key>" or "x-api-key: <key>"');
}

/** The media type of a Content-Type header, lower case, without parameters ('' when absent). */
export function mediaType(header: string | undefined | null): string {
  return (header ?? '').split(';')[0]!.trim().toLowerCase();
}

/** Completions take JSON only; the error names what was sent. */
export function assertJsonContentType(header: string | undefined | null): void {
  const contentType = mediaType(header);
  if (contentType !== 'application/json') throw unsupportedMediaType(contentType || '(none)');
}

/**
 * The body as text, refused past `limitBytes` before it is all read: by Content-Length when declared, by
 * counting otherwise (a chunked body that grows past the limit).
 */
export async function readBodyText(request: Request, limitBytes: number): Promise<string> {
  const body = request.body;
  if (body === null) {
    checkDeclaredLength(request.headers.get('content-length'), limitBytes);
    return '';
  }
  const reader = body.getReader();
  return readBodyChunks(
    request.headers.get('content-length'),
    () => reader.read(),
    () => reader.cancel().then(() => undefined),
    limitBytes,
  );
}

/**
 * A body as text from its chunks, pulled from a web stream, under the size limit:
 * refused early by its declared length, or as soon as what arrived passes the limit, the rest cancelled; a
 * read that fails is the client's error (400 body_read_error).
 */
export async function readBodyChunks(
  declaredLength: string | null | undefined,
  next: () => Promise<{ done?: boolean | undefined; value?: Uint8Array | undefined }>,
  cancel: () => Promise<void>,
  limitBytes: number,
): Promise<string> {
  try {
    checkDeclaredLength(declaredLength, limitBytes);
  } catch (err) {
    await cancel().catch(() => undefined);
    throw err;
  }
  const chunks: Uint8Array[] = [];
  let size = 0;
  try {
    for (;;) {
      const { done, value } = await next();
      if (done) break;
      if (!value) continue;
      size += value.byteLength;
      if (size > limitBytes) {
        await cancel().catch(() => undefined);
        throw payloadTooLarge(limitBytes);
      }
      chunks.push(value);
    }
  } catch (err) {
    if (err instanceof ApiError) throw err;
    throw bodyReadError(err);
  }
  return bodyText(chunks, size);
}

/** A body that could not be read: the client's error. */
export function bodyReadError(err: unknown): ApiError {
  return new ApiError(
    400,
    `could not read the request body: ${err instanceof Error ? err.message : String(err)}`,
    'invalid_request_error',
    null,
    'body_read_error',
  );
}

/** The chunks of a body, `size` bytes in all, as text. */
export function bodyText(chunks: readonly Uint8Array[], size: number): string {
  const bytes = new Uint8Array(size);
  let offset = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, offset);
    offset += chunk.byteLength;
  }
  // A byte-order mark stays in the text (and fails JSON.parse), as it did with Node's own decoder.
  return new TextDecoder('utf-8', { ignoreBOM: true }).decode(bytes);
}

/** Refuses a body whose declared Content-Length is over the limit, before reading any of it. */
export function checkDeclaredLength(declaredLength: string | null | undefined, limitBytes: number): void {
  const declared = Number(declaredLength);
  if (declaredLength != null && Number.isFinite(declared) && declared > limitBytes) throw payloadTooLarge(limitBytes);
}
