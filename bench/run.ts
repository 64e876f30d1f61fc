/**
 * `npm run bench`: measures what this software adds on top of the hardware it models, each figure as a
 * ratio to a floor measured in the same run, in interleaved blocks with their spread.
 *
 * Results go to bench/out/results.{json,md} (not tracked). `npm run bench -- --update` writes the committed
 * bench/results.{json,md} and the table in the README's Performance section instead: refreshing the
 * published figures is a deliberate act. `--quick` runs fewer, shorter blocks (a look while iterating;
 * refused with --update). `--only <section,...>` runs some sections: orchestration, kv, hot-path, bundles,
 * cli, reference-model, simulator. `--traces <dir>`: the simulator's trace files (default samples/).
 *
 * Redis rows run against a private redis-server on a free port (so its command counts are this run's
 * alone, and it is shut down with whatever it holds); without redis-server they are skipped, with a note.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { arch, cpus, loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { createRedis } from '../lib/adapters/redis-connection';
import type { ModelId } from '../lib/core/emulator';
import { bundlesBench } from './bundles';
import { cliStartBench } from './cli-start';
import { hotPathBench } from './hot-path';
import { kvHandoffBench } from './kv-handoff';
import { closeAgents } from './load-client';
import { orchestrationBench } from './orchestration';
import { benchPrompts } from './prompts';
import { startPrivateRedis } from './redis-private';
import { referenceModelBench } from './reference-model';
import { markdownTable, targetsTable, type BenchResults } from './results';
import { simulatorBench } from './simulator';

const SECTIONS = ['orchestration', 'kv', 'hot-path', 'bundles', 'cli', 'reference-model', 'simulator'] as const;
type Section = (typeof SECTIONS)[number];
const MODEL: ModelId = 'llama-3.3-70b';
const PROMPT_TOKENS = 1000;
const RUN_TARGET_S = 300;

const { values } = parseArgs({
  options: {
    update: { type: 'boolean', default: false },
    quick: { type: 'boolean', default: false },
    only: { type: 'string' },
    traces: { type: 'string' },
  },
});
if (values.update && values.quick) throw new Error('--update publishes the full run: drop --quick');
const only = values.only ? (values.only.split(',') as Section[]) : [...SECTIONS];
for (const s of only) {
  if (!SECTIONS.includes(s)) throw new Error(`--only: unknown section "${s}"; sections: ${SECTIONS.join(', ')}`);
}
if (values.update && only.length !== SECTIONS.length) throw new Error('--update publishes the full run: drop --only');
const quick = values.quick ?? false;
const runs = (s: Section): boolean => only.includes(s);

const progress = (line: string): void => void process.stderr.write(`bench: ${line}\n`);
const started = performance.now();
/** Wall seconds each section took (measured), in the order run: where the run's time goes. */
const sectionsS: Record<string, number> = {};
async function timed<T>(section: Section, work: () => T | Promise<T>): Promise<T> {
  const t0 = performance.now();
  try {
    return await work();
  } finally {
    const s = (performance.now() - t0) / 1000;
    sectionsS[section] = Number(s.toFixed(1));
    progress(`${section}: ${s.toFixed(0)} s`);
  }
}
const skipped: string[] = [];

const results: BenchResults = {
  startedAt: new Date().toISOString(),
  machine: {
    cpus: cpus().length,
    model: cpus()[0]?.model ?? 'unknown',
    node: process.version,
    platform: process.platform,
    arch: arch(),
    loadAverageAtStart: loadavg().map((v) => Number(v.toFixed(2))),
  },
  skipped,
  rows: [],
};

const needsRedis = runs('orchestration') || runs('kv');
const privateRedis = needsRedis ? await startPrivateRedis() : null;
if (needsRedis && !privateRedis)
  skipped.push('the Redis rows (no redis-server on PATH: `apt-get install redis-server`)');
const redis = privateRedis ? createRedis({ url: privateRedis.url, connectionName: 'disagg-bench' }) : null;
try {
  // Cold starts first: their target is judged on the load before they run, which the other sections would raise.
  if (runs('bundles')) results.rows.push(...(await timed('bundles', () => bundlesBench(progress, quick))));
  if (runs('cli')) results.rows.push(...(await timed('cli', () => cliStartBench(progress, quick))));
  const prompts = runs('orchestration') || runs('hot-path') ? await benchPrompts(MODEL, PROMPT_TOKENS) : [];
  if (runs('orchestration')) {
    const rows = await timed('orchestration', () =>
      orchestrationBench({
        prompts,
        redis: redis && privateRedis ? { url: privateRedis.url, client: redis } : null,
        progress,
        quick,
      }),
    );
    results.rows.push(...rows);
  }
  if (runs('kv') && redis && privateRedis) {
    const rows = await timed('kv', () => kvHandoffBench({ redis, privatePort: privateRedis.port, progress, quick }));
    results.rows.push(...rows);
  }
  if (runs('hot-path')) {
    results.rows.push(...(await timed('hot-path', () => hotPathBench({ model: MODEL, prompts, progress, quick }))));
  }
  if (runs('reference-model'))
    results.rows.push(...(await timed('reference-model', () => referenceModelBench(progress))));
  if (runs('simulator')) {
    results.rows.push(...(await timed('simulator', () => simulatorBench(progress, quick, values.traces))));
  }
  if (redis) {
    // Every row cleans up after itself; a key left here is a leak the benchmark reports rather than hides.
    const left = await redis.dbsize();
    results.rows.push({
      section: 'hygiene',
      metric: 'keys left in Redis after the run',
      value: left,
      unit: '',
      target: '0',
      pass: left === 0,
    });
  }
} finally {
  closeAgents();
  if (redis) await redis.quit();
  await privateRedis?.stop();
}
results.machine.loadAverageAtEnd = loadavg().map((v) => Number(v.toFixed(2)));
const durationS = (performance.now() - started) / 1000;
// The whole run is held to five minutes when it is the whole run (every section, full blocks).
const whole = !quick && only.length === SECTIONS.length;
results.rows.push({
  section: 'benchmark',
  metric: 'the whole run, wall time',
  value: durationS,
  unit: 's',
  target: whole ? `< ${RUN_TARGET_S} s` : '',
  pass: whole ? durationS < RUN_TARGET_S : null,
  note: `measured; by section: ${Object.entries(sectionsS)
    .map(([name, s]) => `${name} ${s.toFixed(0)} s`)
    .join(', ')}${values.traces ? ' (the simulator on the traces given with --traces)' : ''}`,
});
const finished: BenchResults = { ...results, durationS, sectionsS };

const table = markdownTable(finished);
const dir = new URL(values.update ? './' : './out/', import.meta.url);
mkdirSync(dir, { recursive: true });
writeFileSync(new URL('results.json', dir), `${JSON.stringify(finished, null, 2)}\n`);
writeFileSync(new URL('results.md', dir), `${table}\n`);
if (values.update) await updateReadme(targetsTable(finished));
process.stdout.write(`${table}\n`);
const missed = finished.rows.filter((r) => r.pass === false);
process.stdout.write(
  `\n${missed.length} target(s) missed. Written to ${values.update ? 'bench/results.{json,md} and the README' : 'bench/out/results.{json,md} (not tracked; --update refreshes the committed table)'}.\n`,
);
process.exit(0);

/** Replaces the targets table between the README's bench markers with this run's, formatted as lint expects. */
async function updateReadme(markdown: string): Promise<void> {
  const readme = new URL('../README.md', import.meta.url);
  const text = readFileSync(readme, 'utf8');
  const begin = '<!-- bench:begin (npm run bench -- --update) -->';
  const end = '<!-- bench:end -->';
  const from = text.indexOf(begin);
  const to = text.indexOf(end);
  if (from === -1 || to < from) throw new Error(`README.md has no "${begin}" ... "${end}" markers`);
  const updated = `${text.slice(0, from + begin.length)}\n\n${markdown}\n\n${text.slice(to)}`;
  const prettier = await import('prettier');
  const path = fileURLToPath(readme);
  const options = (await prettier.resolveConfig(path)) ?? {};
  writeFileSync(readme, await prettier.format(updated, { ...options, filepath: path }));
}
