/**
 * `npm run chaos`: the faults an operator meets, injected into the embedded server on loopback, each with its own
 * private redis-server started here (never the shared one) and stopped at the end. Bounded: every request has a
 * 30 s bound and the whole run takes about a minute. Prints one row per fault: the requests sent, how each ended,
 * what was lost (an admitted request that neither finished nor was told why, or a record left unfinished), what
 * leaked (Redis keys without a TTL, KV blobs, open records, event listeners) and what hung (no answer in bound).
 *
 * The server runs in this process where its listeners can be counted, and as `disagg serve` children for the
 * faults that are signals. Exit code 1 when anything was lost, leaked or hung, or the process saw an unhandled
 * rejection; 2 when redis-server is not on PATH. CHAOS_ONLY=<name> runs one fault (the names in main()).
 */
import Table from 'cli-table3';
import type { Redis } from 'ioredis';
import { startPrivateRedis, type PrivateRedis } from '../bench/redis-private';
import { createRedis } from '../lib/adapters/redis-connection';
import { isTerminal, type RequestRecord } from '../lib/core/engine/record';
import { OWNER_LEASE_MS, RECONCILE_EVERY_MS } from '../lib/local/reconciler';
import { startServer, type RunningServer } from '../lib/local/server';
import { scanKeys } from './redis-leaks';
import {
  chat,
  exitWithin,
  killChildren,
  openStreams,
  readStream,
  serve,
  servedUrl,
  type StreamEnd,
} from './serve-process';

/** A request with no answer in this long is hung. */
const BOUND_MS = 30_000;
const PREFIX = 'chaos:';

interface Row {
  readonly fault: string;
  readonly requests: number;
  readonly outcomes: Record<string, number>;
  readonly lost: number;
  readonly leaked: string[];
  readonly hung: number;
  readonly notes?: string;
}

const unhandled: unknown[] = [];
process.on('unhandledRejection', (err) => unhandled.push(err));

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

function tally(outcomes: readonly string[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const o of outcomes) counts[o] = (counts[o] ?? 0) + 1;
  return counts;
}

/** How a stream ended, in a word: completed, told why (the in-band error code), or broken off. */
function streamOutcome(end: StreamEnd): string {
  if (end.status !== 200) return String(end.status);
  if (end.errorCode) return `told ${end.errorCode}`;
  if (end.finishReason) return 'completed';
  return end.reset ? 'reset' : 'cut off';
}

const brokenOff = (o: string): boolean => o === 'reset' || o === 'cut off';

/** A non-streaming request's status, or how it failed (TimeoutError: no answer within the bound). */
async function plain(url: string, maxTokens: number, content?: string): Promise<string> {
  try {
    const res = await chat(
      url,
      { max_tokens: maxTokens, ...(content ? { messages: [{ role: 'user', content }] } : {}) },
      AbortSignal.timeout(BOUND_MS),
    );
    await res.arrayBuffer();
    return String(res.status);
  } catch (err) {
    return (err as Error).name === 'TimeoutError' ? 'hung' : 'reset';
  }
}

async function health(url: string): Promise<{ status: number; ms: number }> {
  const started = performance.now();
  const res = await fetch(`${url}/healthz`, { signal: AbortSignal.timeout(BOUND_MS) });
  await res.arrayBuffer();
  return { status: res.status, ms: performance.now() - started };
}

/** What a Redis holds under the prefix that it should not: keys without a TTL, KV blobs, open records. */
async function redisLeaks(redis: Redis, prefix: string): Promise<{ leaks: string[]; open: RequestRecord[] }> {
  const leaks: string[] = [];
  const open: RequestRecord[] = [];
  for (const key of await scanKeys(redis, prefix)) {
    if ((await redis.pttl(key)) === -1) leaks.push(`no TTL: ${key}`);
    if (key.includes(':kv:')) leaks.push(`KV blob: ${key}`);
    if (key.includes(':result:')) {
      const json = await redis.get(key);
      const record = json ? (JSON.parse(json) as RequestRecord) : null;
      if (record && !isTerminal(record.state)) open.push(record);
    }
  }
  return { leaks, open };
}

/** Events listeners and records left behind by an in-process server once its requests are over. */
function listenerLeaks(server: RunningServer): string[] {
  const listening = server.events.subscribedRequests;
  const admitted = server.inFlight();
  return [
    ...(listening > 0 ? [`${listening} requests with listeners`] : []),
    ...(admitted > 0 ? [`${admitted} requests still admitted`] : []),
  ];
}

async function withRedis<T>(run: (redis: PrivateRedis, client: Redis) => Promise<T>): Promise<T> {
  const redis = await startPrivateRedis();
  if (!redis) throw new Error('no redis-server');
  const client = createRedis({ url: redis.url, connectionName: 'disagg-chaos', onError: () => undefined });
  try {
    return await run(redis, client);
  } finally {
    client.disconnect();
    await redis.stop();
  }
}

/** Waits (bounded) until an in-process server has nothing admitted. */
async function settled(server: RunningServer, ms = 20_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (server.inFlight() > 0 && Date.now() < deadline) await sleep(50);
}

async function storeOutage(kind: 'killed' | 'paused'): Promise<Row> {
  return withRedis(async (redis, client) => {
    const server = await startServer({
      port: 0,
      apiKey: null,
      redisUrl: redis.url,
      redisPrefix: PREFIX,
      engine: { timeScale: 1 },
    });
    const leaving = new AbortController();
    const outcomes: string[] = [];
    let hung = 0;
    try {
      const staying = await openStreams(server.url, 4, 300);
      const left = await Promise.all(
        Array.from({ length: 4 }, () => chat(server.url, { stream: true, max_tokens: 300 }, leaving.signal)),
      );
      const leftEnds = left.map((res) => readStream(res));
      await sleep(300);
      if (kind === 'killed') await redis.stop();
      else redis.pause();
      // Clients leave while the store cannot take their cancellation; new ones arrive.
      leaving.abort();
      await Promise.all(leftEnds);
      outcomes.push(...left.map(() => 'left (client)'));
      const during = await Promise.all(Array.from({ length: 4 }, () => plain(server.url, 4)));
      const probe = await health(server.url);
      outcomes.push(...during, `healthz ${probe.status}`);
      hung += during.filter((o) => o === 'hung').length;
      await sleep(kind === 'paused' ? 1000 : 500);
      if (kind === 'killed') await redis.restart();
      else redis.resume();
      const ends = await Promise.all(staying);
      outcomes.push(...ends.map(streamOutcome));
      await settled(server);
      const after = await plain(server.url, 4);
      outcomes.push(`after: ${after}`);
      // Terminal saves that found the store down are retried in the background: give them their budget.
      const deadline = Date.now() + 20_000;
      let found = await redisLeaks(client, PREFIX);
      while ((found.open.length > 0 || found.leaks.length > 0) && Date.now() < deadline) {
        await sleep(250);
        found = await redisLeaks(client, PREFIX);
      }
      const { leaks, open } = found;
      return {
        fault: `store ${kind} mid-stream, clients leave`,
        requests: 13,
        outcomes: tally(outcomes),
        lost: ends.map(streamOutcome).filter(brokenOff).length + open.length,
        leaked: [...leaks, ...listenerLeaks(server)],
        hung,
      };
    } finally {
      await server.close({ drainMs: 0 });
    }
  });
}

async function sigterm(drainSeconds: number): Promise<Row> {
  const served = serve(['--no-auth', '--time-scale', '1', '--drain-timeout', String(drainSeconds)]);
  const url = await servedUrl(served, 60_000);
  const streams = await openStreams(url, 6, drainSeconds > 0 ? 300 : 4000);
  await sleep(300);
  served.child.kill('SIGTERM');
  const late = await plain(url, 4);
  const ends = await Promise.all(streams);
  const exit = await exitWithin(served, BOUND_MS + drainSeconds * 1000);
  const outcomes = [...ends.map(streamOutcome), `new request: ${late === 'reset' ? 'refused' : late}`, `exit ${exit}`];
  return {
    fault: `SIGTERM, 6 streams in flight, drain ${drainSeconds} s`,
    requests: 7,
    outcomes: tally(outcomes),
    lost: ends.map(streamOutcome).filter(brokenOff).length,
    leaked: [],
    hung: exit === 'timeout' ? 1 : 0,
    notes: 'child process',
  };
}

async function sigkillRestart(): Promise<Row> {
  return withRedis(async (redis, client) => {
    const flags = ['--no-auth', '--time-scale', '1', '--redis-url', redis.url];
    const first = serve(flags);
    const streams = await openStreams(await servedUrl(first, 60_000), 6, 2000);
    await sleep(300);
    first.child.kill('SIGKILL');
    await exitWithin(first, 10_000);
    const ends = await Promise.all(streams);
    const second = serve(flags);
    await servedUrl(second, 60_000);
    const deadline = Date.now() + OWNER_LEASE_MS + RECONCILE_EVERY_MS + 5000;
    let found = await redisLeaks(client, 'disagg:');
    while (found.open.length > 0 && Date.now() < deadline) {
      await sleep(250);
      found = await redisLeaks(client, 'disagg:');
    }
    const records = await scanKeys(client, 'disagg:result:');
    const values = records.length ? await client.mget(...records) : [];
    const codes = values.flatMap((v) => (v ? [(JSON.parse(v) as RequestRecord).error?.code ?? 'none'] : []));
    second.child.kill('SIGTERM');
    const exit = await exitWithin(second, BOUND_MS);
    return {
      fault: 'SIGKILL mid-stream, restart on the same Redis',
      requests: 6,
      outcomes: tally([
        ...ends.map((e) => `${streamOutcome(e)} (process killed)`),
        ...codes.map((c) => `record ${c}`),
        `restarted: exit ${exit}`,
      ]),
      lost: found.open.length,
      leaked: found.leaks,
      hung: 0,
      notes: 'child processes',
    };
  });
}

async function overload(): Promise<Row> {
  const server = await startServer({ port: 0, apiKey: null, engine: { timeScale: 0, maxPrefillQueue: 6 } });
  try {
    const prompt = 'prefill decode wafer cache handoff latency bandwidth memory token batch '.repeat(200);
    const burst = Promise.all(Array.from({ length: 40 }, (_, i) => plain(server.url, 64, `${prompt} ${i}`)));
    let done = false;
    void burst.finally(() => (done = true));
    let worst = 0;
    while (!done) {
      worst = Math.max(worst, (await health(server.url)).ms);
      await sleep(50);
    }
    const outcomes = await burst;
    await settled(server);
    return {
      fault: 'burst of 40 over a prefill queue of 6 (timeScale 0, memory)',
      requests: 40,
      outcomes: tally(outcomes),
      lost: outcomes.filter((o) => o !== '200' && o !== '429' && o !== 'hung').length,
      leaked: listenerLeaks(server),
      hung: outcomes.filter((o) => o === 'hung').length,
      notes: `slowest /healthz ${Math.round(worst)} ms, measured`,
    };
  } finally {
    await server.close({ drainMs: 0 });
  }
}

async function disconnectStorm(): Promise<Row> {
  const server = await startServer({ port: 0, apiKey: null, engine: { timeScale: 1 } });
  try {
    const controllers = Array.from({ length: 30 }, () => new AbortController());
    const responses = await Promise.all(
      controllers.map((c) => chat(server.url, { stream: true, max_tokens: 500 }, c.signal)),
    );
    const reading = responses.map((res) => res.text().catch(() => 'left'));
    await sleep(200);
    for (const c of controllers) c.abort();
    await Promise.all(reading);
    await settled(server);
    return {
      fault: 'disconnect storm: 30 streams cut mid-way',
      requests: 30,
      outcomes: tally(responses.map(() => 'left (client)')),
      lost: 0,
      leaked: listenerLeaks(server),
      hung: server.inFlight(),
    };
  } finally {
    await server.close({ drainMs: 0 });
  }
}

async function main(): Promise<void> {
  const probe = await startPrivateRedis();
  if (!probe) {
    process.stderr.write('npm run chaos needs redis-server on PATH (Debian: apt-get install redis-server)\n');
    process.exit(2);
  }
  await probe.stop();
  const started = performance.now();
  const only = process.env.CHAOS_ONLY;
  const faults: [string, () => Promise<Row>][] = [
    ['store killed', () => storeOutage('killed')],
    ['store paused', () => storeOutage('paused')],
    ['SIGTERM drain', () => sigterm(30)],
    ['SIGTERM deadline', () => sigterm(0)],
    ['SIGKILL', sigkillRestart],
    ['overload', overload],
    ['disconnects', disconnectStorm],
  ];
  const rows: Row[] = [];
  for (const [name, run] of faults.filter(([n]) => !only || n === only)) {
    process.stderr.write(`chaos: ${name}...\n`);
    rows.push(await run());
  }
  killChildren();
  const table = new Table({
    head: ['fault', 'requests', 'outcomes', 'lost', 'leaked', 'hung'],
    style: { head: [], border: [] },
    wordWrap: true,
    colWidths: [30, 10, 44, 6, 16, 6],
  });
  for (const r of rows) {
    const outcomes = Object.entries(r.outcomes)
      .map(([o, n]) => (n > 1 ? `${o} x${n}` : o))
      .join(', ');
    table.push([
      r.notes ? `${r.fault} (${r.notes})` : r.fault,
      r.requests,
      outcomes,
      r.lost,
      r.leaked.length === 0 ? 'none' : r.leaked.slice(0, 3).join('; '),
      r.hung,
    ]);
  }
  process.stdout.write(`${table.toString()}\n`);
  const seconds = ((performance.now() - started) / 1000).toFixed(0);
  const bad = rows.some((r) => r.lost > 0 || r.leaked.length > 0 || r.hung > 0) || unhandled.length > 0;
  process.stdout.write(
    `${rows.length} faults in ${seconds} s (measured wall time); unhandled rejections: ${unhandled.length}; ${bad ? 'FAILED' : 'nothing lost, leaked or hung'}\n`,
  );
  process.exit(bad ? 1 : 0);
}

await main();
