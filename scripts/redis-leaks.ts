/**
 * What a pipeline should never leave in Redis once its requests are over, under one key prefix:
 * KV blobs (`…:kv:<key>`), request records in a non-terminal state (`…:result:<id>`), and queue keys
 * still holding messages (RedisQueue's `…{name}:body` / `vis` / `dlq`). Used by the load test and by
 * the test suite's global teardown.
 */
import type { Redis } from 'ioredis';
import { escapeGlob } from '../lib/adapters/kv-redis';
import { TERMINAL_STATES } from '../lib/core/engine/record';

export interface RedisLeaks {
  readonly kvBlobs: string[];
  /** With the state, so a report says what the record was stuck in. */
  readonly openRecords: { key: string; state: string }[];
  readonly queuedMessages: string[];
}

/** Every key under `prefix`, by a full SCAN (never KEYS, which blocks the server). */
export async function scanKeys(redis: Redis, prefix: string): Promise<string[]> {
  const found: string[] = [];
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${escapeGlob(prefix)}*`, 'COUNT', 1000);
    cursor = next;
    found.push(...keys);
  } while (cursor !== '0');
  return found;
}

const QUEUE_KEY = /\}:(body|vis|dlq)$/;

export async function findRedisLeaks(redis: Redis, prefix: string): Promise<RedisLeaks> {
  const leaks: RedisLeaks = { kvBlobs: [], openRecords: [], queuedMessages: [] };
  for (const key of await scanKeys(redis, prefix)) {
    const rest = key.slice(prefix.length);
    if (rest.includes(':kv:') || rest.startsWith('kv:')) leaks.kvBlobs.push(key);
    else if (rest.includes(':result:') || rest.startsWith('result:')) {
      const state = recordState(await redis.get(key));
      // Gone between SCAN and GET means it expired: nothing left behind.
      if (state !== null && !(TERMINAL_STATES as readonly string[]).includes(state))
        leaks.openRecords.push({ key, state });
    } else {
      const kind = QUEUE_KEY.exec(key)?.[1];
      if (kind !== undefined && (await queueLength(redis, key, kind)) > 0) leaks.queuedMessages.push(key);
    }
  }
  return leaks;
}

export function leakCount(leaks: RedisLeaks): number {
  return leaks.kvBlobs.length + leaks.openRecords.length + leaks.queuedMessages.length;
}

/** A few keys of each kind, for an error message. */
export function describeLeaks(leaks: RedisLeaks, max = 5): string {
  const part = (name: string, keys: string[]) =>
    keys.length === 0
      ? []
      : [`${keys.length} ${name}: ${keys.slice(0, max).join(', ')}${keys.length > max ? ', …' : ''}`];
  return [
    ...part('KV blobs', leaks.kvBlobs),
    ...part(
      'non-terminal records',
      leaks.openRecords.map((r) => `${r.key} (${r.state})`),
    ),
    ...part('queue keys holding messages', leaks.queuedMessages),
  ].join('; ');
}

/** A record's `state`, `'unparseable'` when it is not a JSON object with one, null when the key is gone. */
function recordState(json: string | null): string | null {
  if (json === null) return null;
  try {
    const state = (JSON.parse(json) as { state?: unknown }).state;
    return typeof state === 'string' ? state : 'unparseable';
  } catch {
    return 'unparseable';
  }
}

async function queueLength(redis: Redis, key: string, kind: string): Promise<number> {
  if (kind === 'body') return redis.hlen(key);
  if (kind === 'vis') return redis.zcard(key);
  return redis.llen(key);
}

/**
 * Deletes every key under `prefix` except the leaks, which stay for whoever checks next (the global
 * teardown) to see; returns them.
 */
export async function deleteAllButLeaks(redis: Redis, prefix: string): Promise<RedisLeaks> {
  const leaks = await findRedisLeaks(redis, prefix);
  const keep = new Set([...leaks.kvBlobs, ...leaks.openRecords.map((r) => r.key), ...leaks.queuedMessages]);
  const doomed = (await scanKeys(redis, prefix)).filter((k) => !keep.has(k));
  for (let i = 0; i < doomed.length; i += 1000) await redis.unlink(...doomed.slice(i, i + 1000));
  return leaks;
}
