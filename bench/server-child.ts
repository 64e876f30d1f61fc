/**
 * A server in a process of its own, started by the benchmark (which is the client, in another process):
 * either `disagg serve`'s server (memory or Redis, one thread or --workers) with a backend that does no
 * model compute, or the floor, a bare node:http server doing the least a JSON or SSE API can do. Over
 * IPC it reports its URL, answers with its CPU time so far (every thread of the process), and on close
 * reports the KV blobs it still holds.
 *
 * Usage (IPC channel required): server-child.ts floor | server-child.ts floor-redis '<RedisFloorOptions JSON>' |
 * server-child.ts project '<ProjectOptions JSON>'
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { pathToFileURL } from 'node:url';
import { createRedis } from '../lib/adapters/redis-connection';
import { startServer } from '../lib/local/server';
import { OUTPUT_TOKENS } from './load-client';

export interface ProjectOptions {
  readonly redisUrl: string | null;
  readonly redisPrefix: string;
  readonly workers: boolean;
}

/**
 * The Redis floor: the bare server, plus the Redis traffic a request's KV handoff cannot avoid, a SET of a
 * blob of the request's KV size and a GETDEL of it, through the same client library and connection settings.
 */
export interface RedisFloorOptions {
  readonly redisUrl: string;
  readonly redisPrefix: string;
  readonly blobBytes: number;
}

/** Parent → child. */
export type ChildRequest = { readonly cpu: true } | { readonly close: true };
/** Child → parent. */
export type ChildReply =
  { readonly ready: string } | { readonly cpuMs: number } | { readonly closed: true; readonly kvBlobs: number };

const PIECE = ' hello';

function cpuMs(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
}

/**
 * The floor: read the body, parse it, answer a completion-shaped JSON, or 100 SSE events, and nothing else; with
 * `redis`, the blob's SET and GETDEL first.
 */
function startFloor(redis: RedisFloorOptions | null = null): Promise<{ url: string; close(): Promise<void> }> {
  const text = PIECE.repeat(OUTPUT_TOKENS);
  const client = redis ? createRedis({ url: redis.redisUrl, connectionName: 'disagg-bench-floor' }) : null;
  const blob = Buffer.alloc(redis?.blobBytes ?? 0, 0x5a);
  let n = 0;
  const handoff = async (): Promise<void> => {
    if (!client) return;
    const key = `${redis!.redisPrefix}floor:${n++}`;
    await client.set(key, blob, 'PX', 60_000);
    const back = await client.getdelBuffer(key);
    if (back?.length !== blob.length) throw new Error('floor: the blob did not come back');
  };
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    const answer = (): void => {
      const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { model: string };
      const id = `cmpl-${Math.random().toString(36).slice(2)}`;
      if (req.url === '/sse') {
        res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache' });
        for (let i = 0; i < OUTPUT_TOKENS; i++) {
          res.write(`data: ${JSON.stringify({ id, model: body.model, choices: [{ index: 0, text: PIECE }] })}\n\n`);
        }
        res.end('data: [DONE]\n\n');
        return;
      }
      const json = JSON.stringify({
        id,
        object: 'text_completion',
        model: body.model,
        choices: [{ index: 0, text, finish_reason: 'length' }],
        usage: { prompt_tokens: 1000, completion_tokens: OUTPUT_TOKENS, total_tokens: 1000 + OUTPUT_TOKENS },
      });
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(json) });
      res.end(json);
    };
    req.on('end', () => {
      // The plain floor answers in the same tick; the Redis floor after its round trips.
      if (!client) return answer();
      handoff().then(answer, (error: unknown) => {
        res.writeHead(500, { 'content-type': 'text/plain' });
        res.end(String(error));
      });
    });
  });
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () =>
      resolve({
        url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
        close: () =>
          new Promise<void>((done) => (server.closeAllConnections(), server.close(() => done()))).then(() =>
            client?.quit().then(() => undefined),
          ),
      }),
    ),
  );
}

async function startProject(options: ProjectOptions): Promise<{ url: string; close(): Promise<number> }> {
  const server = await startServer({
    port: 0,
    apiKey: null,
    engine: { timeScale: 0, decodeBatchMax: 64, maxPrefillQueue: 4096, maxDecodeQueue: 4096 },
    redisUrl: options.redisUrl,
    redisPrefix: options.redisPrefix,
    workers: options.workers,
    backendModule: pathToFileURL(new URL('null-backend.ts', import.meta.url).pathname).href,
    prefillConcurrency: 4,
    log: (line) => process.stderr.write(`bench server: ${line}\n`),
  });
  return {
    url: server.url,
    async close() {
      const kvBlobs = await server.kv.count();
      await server.close();
      return kvBlobs;
    },
  };
}

const [mode, json] = process.argv.slice(2);
if (!process.send) throw new Error('server-child.ts runs under the benchmark, with an IPC channel');
const send = (reply: ChildReply): void => void process.send!(reply);
const running =
  mode === 'floor' || mode === 'floor-redis'
    ? await startFloor(mode === 'floor-redis' ? (JSON.parse(json ?? '{}') as RedisFloorOptions) : null).then((s) => ({
        url: s.url,
        close: async () => (await s.close(), 0),
      }))
    : await startProject(JSON.parse(json ?? '{}') as ProjectOptions);
process.on('message', (request: ChildRequest) => {
  if ('cpu' in request) send({ cpuMs: cpuMs() });
  else
    void running.close().then((kvBlobs) => {
      send({ closed: true, kvBlobs });
      process.disconnect();
      process.exit(0);
    });
});
send({ ready: running.url });
