/**
 * A private redis-server for the benchmark, on a free loopback port, with no persistence: its command
 * counts (INFO commandstats) are this run's alone, nothing else's keys or traffic are in it, and it is
 * shut down (with whatever it holds) at the end. Without redis-server on PATH the caller falls back to
 * REDIS_URL and says so.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import type { Redis } from 'ioredis';
import { createRedis } from '../lib/adapters/redis-connection';

export interface PrivateRedis {
  readonly url: string;
  readonly port: number;
  stop(): Promise<void>;
  /** Starts it again on the same port after stop() (empty: nothing persists), for outage tests. */
  restart(): Promise<void>;
  /** Freezes it (SIGSTOP): connections stay open and nothing answers, as a hung server does. */
  pause(): void;
  resume(): void;
}

export function hasCommand(name: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${name}`], { encoding: 'utf8' }).status === 0;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

export async function startPrivateRedis(): Promise<PrivateRedis | null> {
  if (!hasCommand('redis-server')) return null;
  const port = await freePort();
  const url = `redis://127.0.0.1:${port}`;
  let child = await spawnRedis(port, url);
  return {
    url,
    port,
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGCONT');
        child.kill('SIGTERM');
      }),
    async restart() {
      child = await spawnRedis(port, url);
    },
    pause: () => void child.kill('SIGSTOP'),
    resume: () => void child.kill('SIGCONT'),
  };
}

async function spawnRedis(port: number, url: string): Promise<ChildProcess> {
  const child: ChildProcess = spawn(
    'redis-server',
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--protected-mode', 'yes'],
    { stdio: 'ignore' },
  );
  const probe = createRedis({ url, connectionName: 'disagg-bench-probe', lazyConnect: true, onError: () => undefined });
  try {
    for (let i = 0; i < 100; i++) {
      try {
        await probe.connect();
        await probe.ping();
        break;
      } catch {
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    }
    await probe.ping();
  } catch (err) {
    child.kill('SIGKILL');
    throw new Error(`private redis-server on port ${port} did not answer: ${(err as Error).message}`, { cause: err });
  } finally {
    probe.disconnect();
  }
  return child;
}

/** Calls per command since the server started (INFO commandstats), without the INFO calls themselves. */
export async function commandCounts(redis: Redis): Promise<Map<string, number>> {
  const text = await redis.info('commandstats');
  const counts = new Map<string, number>();
  for (const m of text.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) {
    if (m[1] !== 'info') counts.set(m[1]!, Number(m[2]));
  }
  return counts;
}

/** Commands issued between two counts, by command. */
export function countsBetween(before: Map<string, number>, after: Map<string, number>): Map<string, number> {
  const out = new Map<string, number>();
  for (const [name, calls] of after) {
    const d = calls - (before.get(name) ?? 0);
    if (d > 0) out.set(name, d);
  }
  return out;
}
