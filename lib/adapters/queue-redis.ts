import { createHash } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { Queue, QueueMessage } from '../core/ports';

export interface RedisQueueOptions {
  /** Shared command connection (owned by the caller); blocking waits use duplicates of it. */
  readonly redis: Redis;
  /** Queue name; every consumer that uses the same name and prefix shares the queue. */
  readonly name: string;
  /** How long a received, un-acked message stays hidden before it can be received again. */
  readonly visibilityTimeoutMs: number;
  /** Receives allowed per message; the receive after the last one moves it to the dead-letter list. */
  readonly maxReceives: number;
  /** Names this consumer's blocking connections in `CLIENT LIST`, to tell workers apart. */
  readonly consumer?: string;
  /** Key prefix. Default `disagg:queue:`. */
  readonly prefix?: string;
}

/** A Lua script run by SHA (EVALSHA), loaded on first use or after a server restart (NOSCRIPT). */
class LuaScript {
  private readonly sha: string;

  constructor(private readonly lua: string) {
    this.sha = createHash('sha1').update(lua).digest('hex');
  }

  async run(redis: Redis, keys: string[], args: (string | number)[]): Promise<unknown> {
    try {
      return await redis.evalsha(this.sha, keys.length, ...keys, ...args);
    } catch (error) {
      if (!(error instanceof Error) || !error.message.startsWith('NOSCRIPT')) throw error;
      return redis.eval(this.lua, keys.length, ...keys, ...args);
    }
  }
}

/** Longest single blocking wait, so a waiter re-checks for messages another process delayed or timed out. */
const MAX_BLOCK_MS = 1000;
/** Wake-up tokens kept while nobody waits; bounds the list if no one ever receives. */
const SIGNAL_CAP = 128;

const NOW_MS = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local function ms(x) return string.format('%.0f', x) end
`;

// KEYS: seq, body, vis, signal. ARGV: body, signalCap.
const SEND = new LuaScript(`${NOW_MS}
local id = string.format('%012d', redis.call('INCR', KEYS[1]))
redis.call('HSET', KEYS[2], id, ARGV[1])
redis.call('ZADD', KEYS[3], ms(now), id)
redis.call('RPUSH', KEYS[4], '1')
redis.call('LTRIM', KEYS[4], -tonumber(ARGV[2]), -1)
return id
`);

// KEYS: body, vis, count, receipt, dlq, signal. ARGV: maxMessages, visibilityTimeoutMs, maxReceives.
// Returns {ms until the next hidden message turns visible or -1, {receipt, receiveCount, body, ...}}.
const RECEIVE = new LuaScript(`${NOW_MS}
local max = tonumber(ARGV[1])
local vt = tonumber(ARGV[2])
local maxReceives = tonumber(ARGV[3])
local out = {}
local delivered = 0
while delivered < max do
  local ids = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', ms(now), 'LIMIT', 0, max - delivered)
  if #ids == 0 then break end
  for _, id in ipairs(ids) do
    local body = redis.call('HGET', KEYS[1], id)
    local count = tonumber(redis.call('HGET', KEYS[3], id) or '0')
    if (not body) or count >= maxReceives then
      if body then redis.call('RPUSH', KEYS[5], body) end
      redis.call('ZREM', KEYS[2], id)
      redis.call('HDEL', KEYS[1], id)
      redis.call('HDEL', KEYS[3], id)
      redis.call('HDEL', KEYS[4], id)
    else
      count = count + 1
      local receipt = id .. ':' .. count
      redis.call('HSET', KEYS[3], id, count)
      redis.call('HSET', KEYS[4], id, receipt)
      redis.call('ZADD', KEYS[2], ms(now + vt), id)
      out[#out + 1] = receipt
      out[#out + 1] = count
      out[#out + 1] = body
      delivered = delivered + 1
    end
  end
end
-- Found nothing: any queued wake-up tokens are stale, so drop them rather than let waiters spin on them.
if delivered == 0 then redis.call('DEL', KEYS[6]) end
local nextVisible = -1
local head = redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')
if #head > 0 then nextVisible = math.max(0, tonumber(head[2]) - now) end
return {nextVisible, out}
`);

// KEYS: body, vis, count, receipt. ARGV: id, receipt.
const ACK = new LuaScript(`
if redis.call('HGET', KEYS[4], ARGV[1]) ~= ARGV[2] then return 0 end
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('HDEL', KEYS[3], ARGV[1])
redis.call('HDEL', KEYS[4], ARGV[1])
return 1
`);

// KEYS: vis, receipt, signal. ARGV: id, receipt, delayMs, signalCap.
const RELEASE = new LuaScript(`${NOW_MS}
if redis.call('HGET', KEYS[2], ARGV[1]) ~= ARGV[2] then return 0 end
redis.call('HDEL', KEYS[2], ARGV[1])
redis.call('ZADD', KEYS[1], ms(now + tonumber(ARGV[3])), ARGV[1])
redis.call('RPUSH', KEYS[3], '1')
redis.call('LTRIM', KEYS[3], -tonumber(ARGV[4]), -1)
return 1
`);

/**
 * At-least-once queue on Redis/Valkey, safe for consumers in many processes. Every state change is one
 * Lua script, timed by the server's clock (so consumer clock skew can't shorten a visibility timeout).
 *
 * Layout under `{prefix}{name}:` (one hash tag, so it also works on cluster-mode/serverless Valkey):
 * `vis` zset id → ms when receivable (waiting: send/release time; in flight: visibility deadline),
 * `body`/`count`/`receipt` hashes by id, `dlq` list of bodies, `seq` id counter, and `signal`, a
 * list of wake-up tokens that long-polling receivers BLPOP on dedicated connections.
 * Receipts are `id:receiveCount`, unique per delivery; a stale one neither acks nor releases.
 * A long poll can return up to ~100 ms after `waitMs`: Redis checks blocking timeouts on its cron tick.
 */
export class RedisQueue implements Queue {
  readonly name: string;
  readonly visibilityTimeoutMs: number;
  readonly maxReceives: number;
  private readonly redis: Redis;
  private readonly consumer: string | undefined;
  private readonly keys: Record<'seq' | 'body' | 'vis' | 'count' | 'receipt' | 'dlq' | 'signal', string>;
  /** Blocking connections: BLPOP holds a connection, so concurrent receives each need their own. */
  private readonly blockers = new Set<Redis>();
  private readonly idleBlockers: Redis[] = [];
  private closed = false;

  constructor(options: RedisQueueOptions) {
    if (!options.name || /[{}]/.test(options.name)) {
      throw new RangeError(`RedisQueue: name must be non-empty without braces, got ${JSON.stringify(options.name)}`);
    }
    if (!Number.isFinite(options.visibilityTimeoutMs) || options.visibilityTimeoutMs <= 0) {
      throw new RangeError(`RedisQueue: visibilityTimeoutMs must be > 0, got ${options.visibilityTimeoutMs}`);
    }
    if (!Number.isInteger(options.maxReceives) || options.maxReceives < 1) {
      throw new RangeError(`RedisQueue: maxReceives must be an integer >= 1, got ${options.maxReceives}`);
    }
    this.redis = options.redis;
    this.name = options.name;
    this.visibilityTimeoutMs = options.visibilityTimeoutMs;
    this.maxReceives = options.maxReceives;
    this.consumer = options.consumer;
    const base = `${options.prefix ?? 'disagg:queue:'}{${options.name}}:`;
    this.keys = {
      seq: `${base}seq`,
      body: `${base}body`,
      vis: `${base}vis`,
      count: `${base}count`,
      receipt: `${base}receipt`,
      dlq: `${base}dlq`,
      signal: `${base}signal`,
    };
  }

  async send(body: string): Promise<void> {
    if (this.closed) throw new Error(`RedisQueue ${this.name}: send on a closed queue`);
    const k = this.keys;
    await SEND.run(this.redis, [k.seq, k.body, k.vis, k.signal], [body, SIGNAL_CAP]);
  }

  async receive(maxMessages: number, waitMs: number): Promise<QueueMessage[]> {
    if (!Number.isInteger(maxMessages) || maxMessages < 1) {
      throw new RangeError(`RedisQueue.receive: maxMessages must be an integer >= 1, got ${maxMessages}`);
    }
    if (!Number.isFinite(waitMs) || waitMs < 0) {
      throw new RangeError(`RedisQueue.receive: waitMs must be finite and >= 0, got ${waitMs}`);
    }
    const k = this.keys;
    const deadline = Date.now() + waitMs;
    for (;;) {
      if (this.closed) return [];
      const reply = (await RECEIVE.run(
        this.redis,
        [k.body, k.vis, k.count, k.receipt, k.dlq, k.signal],
        [maxMessages, Math.ceil(this.visibilityTimeoutMs), this.maxReceives],
      )) as [number, (string | number)[]];
      const [nextVisibleMs, flat] = reply;
      const messages: QueueMessage[] = [];
      for (let i = 0; i < flat.length; i += 3) {
        messages.push({ receipt: String(flat[i]), receiveCount: Number(flat[i + 1]), body: String(flat[i + 2]) });
      }
      const remaining = deadline - Date.now();
      if (messages.length > 0 || remaining <= 0 || this.closed) return messages;
      // +1 ms because the server rounds its clock down to whole ms.
      const untilVisible = nextVisibleMs >= 0 ? nextVisibleMs + 1 : Infinity;
      await this.block(Math.min(remaining, untilVisible, MAX_BLOCK_MS));
    }
  }

  async ack(receipt: string): Promise<void> {
    const k = this.keys;
    await ACK.run(this.redis, [k.body, k.vis, k.count, k.receipt], [receiptId(receipt), receipt]);
  }

  async release(receipt: string, delayMs = 0): Promise<void> {
    if (!Number.isFinite(delayMs) || delayMs < 0) {
      throw new RangeError(`RedisQueue.release: delayMs must be finite and >= 0, got ${delayMs}`);
    }
    const k = this.keys;
    await RELEASE.run(
      this.redis,
      [k.vis, k.receipt, k.signal],
      [receiptId(receipt), receipt, Math.ceil(delayMs), SIGNAL_CAP],
    );
  }

  async depth(): Promise<number> {
    return this.redis.zcard(this.keys.vis);
  }

  async deadLetters(): Promise<string[]> {
    return this.redis.lrange(this.keys.dlq, 0, -1);
  }

  /**
   * Stops this consumer: pending receives resolve with [], later sends reject. Closes only the
   * blocking connections this queue opened; the shared `redis` stays the caller's to quit.
   */
  async close(): Promise<void> {
    this.closed = true;
    for (const blocker of this.blockers) blocker.disconnect();
    this.blockers.clear();
    this.idleBlockers.length = 0;
  }

  /** Waits up to `ms` for a wake-up token (a send or release anywhere). */
  private async block(ms: number): Promise<void> {
    if (this.closed) return;
    const blocker = this.idleBlockers.pop() ?? this.openBlocker();
    try {
      // BLPOP takes seconds; at least 1 ms, since a timeout of 0 would block forever.
      await blocker.blpop(this.keys.signal, (Math.max(1, Math.ceil(ms)) / 1000).toFixed(3));
    } catch (error) {
      this.blockers.delete(blocker);
      blocker.disconnect();
      if (this.closed) return;
      throw error;
    }
    if (this.closed) blocker.disconnect();
    else this.idleBlockers.push(blocker);
  }

  private openBlocker(): Redis {
    const blocker = this.redis.duplicate({
      // A command timeout would cut every long poll short.
      commandTimeout: undefined,
      ...(this.consumer ? { connectionName: `${this.consumer}-wait` } : {}),
    });
    // Its failures reach the caller as the BLPOP's rejection; the listener only stops ioredis logging them.
    blocker.on('error', () => {});
    this.blockers.add(blocker);
    return blocker;
  }
}

function receiptId(receipt: string): string {
  return receipt.split(':', 1)[0] ?? '';
}
