/**
 * The benchmark's HTTP client and its servers: it runs in the benchmark's process, each server in a
 * child process (bench/server-child.ts), so the client never shares a server's event loop. Plain
 * node:http with keep-alive sockets, one per concurrent request, for the floor and the project alike.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { Agent, request } from 'node:http';
import { fileURLToPath } from 'node:url';
import type { ChildReply, ChildRequest, ProjectOptions, RedisFloorOptions } from './server-child';

export interface ServerProcess {
  readonly url: string;
  /** CPU ms the server's process has used so far, all its threads. */
  cpuMs(): Promise<number>;
  /** Closes the server; resolves with the KV blobs it still held. */
  close(): Promise<number>;
}

/** Output tokens of every benchmark request (the servers' backend and the floor both produce this many). */
export const OUTPUT_TOKENS = 100;

const CHILD = fileURLToPath(new URL('server-child.ts', import.meta.url));

/** A server child: the bare floor, the bare floor with a request's KV traffic through Redis, or the project. */
export async function startServerProcess(
  kind: 'floor' | { readonly redisFloor: RedisFloorOptions } | ProjectOptions,
): Promise<ServerProcess> {
  const args =
    kind === 'floor'
      ? ['floor']
      : 'redisFloor' in kind
        ? ['floor-redis', JSON.stringify(kind.redisFloor)]
        : ['project', JSON.stringify(kind)];
  const child: ChildProcess = fork(CHILD, args, {
    execArgv: ['--import', 'tsx'],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const next = (): Promise<ChildReply> =>
    new Promise((resolve, reject) => {
      const onExit = (code: number | null): void => reject(new Error(`bench server (${args[0]}) exited with ${code}`));
      child.once('exit', onExit);
      child.once('message', (m: ChildReply) => {
        child.off('exit', onExit);
        resolve(m);
      });
    });
  const ask = async (req: ChildRequest): Promise<ChildReply> => {
    const reply = next();
    child.send(req);
    return reply;
  };
  const ready = await next();
  if (!('ready' in ready)) throw new Error('bench server did not report its URL');
  return {
    url: ready.ready,
    async cpuMs() {
      const reply = await ask({ cpu: true });
      if (!('cpuMs' in reply)) throw new Error('bench server did not report its CPU time');
      return reply.cpuMs;
    },
    async close() {
      const reply = await ask({ close: true });
      return 'kvBlobs' in reply ? reply.kvBlobs : 0;
    },
  };
}

export interface LoadResult {
  /** Wall ms per request, as the client saw it. */
  readonly latencies: number[];
  readonly seconds: number;
  /** Server CPU ms per request over the run (every thread of its process). */
  readonly cpuMsPerRequest: number;
}

export interface LoadSpec {
  readonly path: string;
  /** Request bodies, sent in turn. */
  readonly bodies: readonly string[];
  readonly concurrency: number;
  readonly requests: number;
  /** Throws when a response is not what this row expects (status, token count, stream end). */
  readonly check: (status: number, body: string) => void;
}

const agents = new Map<number, Agent>();

function agentFor(concurrency: number): Agent {
  let agent = agents.get(concurrency);
  if (!agent) {
    agent = new Agent({ keepAlive: true, maxSockets: concurrency });
    agents.set(concurrency, agent);
  }
  return agent;
}

function post(url: string, path: string, body: string, agent: Agent): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      `${url}${path}`,
      {
        method: 'POST',
        agent,
        headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
      },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (body += chunk));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

/** `spec.requests` requests, `spec.concurrency` at a time, against one server; with its CPU per request. */
export async function runLoad(server: ServerProcess, spec: LoadSpec): Promise<LoadResult> {
  const agent = agentFor(spec.concurrency);
  const latencies: number[] = [];
  let issued = 0;
  const worker = async (): Promise<void> => {
    while (issued < spec.requests) {
      const request = spec.bodies[issued % spec.bodies.length]!;
      issued += 1;
      const t0 = performance.now();
      const { status, body } = await post(server.url, spec.path, request, agent);
      latencies.push(performance.now() - t0);
      spec.check(status, body);
    }
  };
  const cpu0 = await server.cpuMs();
  const start = performance.now();
  await Promise.all(Array.from({ length: spec.concurrency }, worker));
  const seconds = (performance.now() - start) / 1000;
  const cpu1 = await server.cpuMs();
  return { latencies, seconds, cpuMsPerRequest: (cpu1 - cpu0) / spec.requests };
}

export function closeAgents(): void {
  for (const agent of agents.values()) agent.destroy();
  agents.clear();
}
