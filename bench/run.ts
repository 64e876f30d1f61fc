/**
 * `npm run bench`: measures what this software adds on top of the hardware it models, writes
 * bench/results.json and bench/results.md, and prints the table. Needs Redis at REDIS_URL
 * (default redis://127.0.0.1:6379) for the Redis rows, and skips them with a note when it does not answer.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { createRedis } from '../lib/adapters/redis-connection';
import { bundlesBench } from './bundles';
import { kvHandoffBench } from './kv-handoff';
import { orchestrationBench } from './orchestration';
import { referenceModelBench } from './reference-model';
import { markdownTable, type BenchResults } from './results';
import { simulatorBench } from './simulator';

const progress = (line: string): void => void process.stderr.write(`bench: ${line}\n`);

/** The Redis URL if a server answers there within a few seconds, else null. */
async function reachableRedis(url: string): Promise<string | null> {
  const redis = createRedis({ url, connectionName: 'disagg-bench-probe', lazyConnect: true });
  try {
    await Promise.race([
      redis.connect().then(() => redis.ping()),
      new Promise((_, reject) => setTimeout(() => reject(new Error('no answer in 3 s')), 3000)),
    ]);
    return url;
  } catch (err) {
    progress(`Redis at ${url} did not answer (${(err as Error).message}): the Redis rows are skipped`);
    return null;
  } finally {
    redis.disconnect();
  }
}

const redisUrl = await reachableRedis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379');

const results: BenchResults = {
  startedAt: new Date().toISOString(),
  machine: {
    cpus: cpus().length,
    model: cpus()[0]?.model ?? 'unknown',
    node: process.version,
    platform: process.platform,
    loadAverageAtStart: loadavg().map((v) => Number(v.toFixed(2))),
  },
  rows: [],
};
results.rows.push(...(await orchestrationBench(redisUrl, progress)));
if (redisUrl) results.rows.push(...(await kvHandoffBench(redisUrl, progress)));
results.rows.push(...(await bundlesBench(progress)));
results.rows.push(...(await referenceModelBench(progress)));
results.rows.push(...simulatorBench(progress));
results.machine.loadAverageAtEnd = loadavg().map((v) => Number(v.toFixed(2)));

const dir = new URL('./', import.meta.url);
mkdirSync(dir, { recursive: true });
writeFileSync(new URL('results.json', dir), `${JSON.stringify(results, null, 2)}\n`);
const table = markdownTable(results);
writeFileSync(new URL('results.md', dir), `${table}\n`);
process.stdout.write(`${table}\n`);
const missed = results.rows.filter((r) => r.pass === false);
if (missed.length > 0)
  process.stdout.write(`\n${missed.length} target(s) missed; see the README's performance section for why.\n`);
process.exit(0);
