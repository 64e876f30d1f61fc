/**
 * A server in a process of its own, started by the benchmark (which is the client, in another process):
 * either `disagg serve`'s server (memory or Redis, one thread or --workers) with a backend that does no
 * model compute, or the floor, a bare node:http server doing the least a JSON or SSE API can do. Over
 * IPC it reports its URL, answers with its CPU time so far (every thread of the process), and on close
 * reports the KV blobs it still holds.
 *
 * Usage (IPC channel required): server-child.ts floor | server-child.ts project '<ProjectOptions JSON>'
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { pathToFileURL } from 'node:url';
import { startServer } from '../lib/local/server';
import { OUTPUT_TOKENS } from './load-client';

export interface ProjectOptions {
  readonly redisUrl: string | null;
  readonly redisPrefix: string;
  readonly workers: boolean;
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

/** The floor: read the body, parse it, answer a completion-shaped JSON, or 100 SSE events, and nothing else. */
function startFloor(): Promise<{ url: string; close(): Promise<void> }> {
  const text = PIECE.repeat(OUTPUT_TOKENS);
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
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
    });
  });
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () =>
      resolve({
        url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
        close: () => new Promise((done) => (server.closeAllConnections(), server.close(() => done()))),
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
  mode === 'floor'
    ? await startFloor().then((s) => ({ url: s.url, close: async () => (await s.close(), 0) }))
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
