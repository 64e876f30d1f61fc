/**
 * `npm run bench`: measures what this software adds on top of the hardware it models, writes
 * bench/results.json and bench/results.md, and prints the table. Needs Redis at REDIS_URL
 * (default redis://127.0.0.1:6379) for the Redis rows.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { kvHandoffBench } from './kv-handoff';
import { orchestrationBench } from './orchestration';
import { referenceModelBench } from './reference-model';
import { markdownTable, type BenchResults } from './results';

const redisUrl = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const progress = (line: string): void => void process.stderr.write(`bench: ${line}\n`);

const results: BenchResults = {
  startedAt: new Date().toISOString(),
  machine: {
    cpus: cpus().length,
    model: cpus()[0]?.model ?? 'unknown',
    node: process.version,
    platform: process.platform,
  },
  rows: [],
};
results.rows.push(...(await orchestrationBench(redisUrl, progress)));
results.rows.push(...(await kvHandoffBench(redisUrl, progress)));
results.rows.push(...(await referenceModelBench(progress)));

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
