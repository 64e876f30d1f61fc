/**
 * Orchestration against its floor: requests through `disagg serve` (HTTP API, tokenizing, prefill, KV
 * handoff, decode, response) at timeScale 0 with a backend that does no model compute, 1,000-token
 * prompts and 100 output tokens, beside a bare node:http server answering the same requests, both in
 * processes of their own and driven by the same client. Each row is several blocks, floor and project
 * interleaved in alternating order, and reports the median and range of the per-block ratios.
 */
import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import {
  OUTPUT_TOKENS,
  runLoad,
  startServerProcess,
  type LoadResult,
  type LoadSpec,
  type ServerProcess,
} from './load-client';
import { KV_BYTES_PER_TOKEN } from './null-backend';
import type { BenchPrompt } from './prompts';
import { deleteAllButLeaks, describeLeaks, leakCount } from '../scripts/redis-leaks';
import { commandCounts, countsBetween } from './redis-private';
import { fmt, median, ratioRow, type BenchRow } from './results';

export interface OrchestrationContext {
  readonly prompts: readonly BenchPrompt[];
  /** The private Redis (commands counted), or null to skip the Redis rows. */
  readonly redis: { readonly url: string; readonly client: Redis } | null;
  readonly progress: (line: string) => void;
  /** Fewer and shorter blocks (a quick look while iterating, not for the committed table). */
  readonly quick: boolean;
}

const CPU_TARGET = { memory: 10, redis: 20 } as const;
const COMMANDS_TARGET = 10;
const THROUGHPUT_TARGET = { concurrency: 32, share: 0.05 } as const;
const CONCURRENCIES = [1, 8, 32, 128] as const;

type Store = 'memory' | 'redis';

function jsonCheck(status: number, body: string): void {
  if (status !== 200 || !body.includes(`"completion_tokens":${OUTPUT_TOKENS}`)) {
    throw new Error(`bench request failed: HTTP ${status} ${body.slice(0, 300)}`);
  }
}

function sseCheck(status: number, body: string): void {
  if (status !== 200 || !body.endsWith('data: [DONE]\n\n') || body.includes('"error"')) {
    throw new Error(`bench stream failed: HTTP ${status} ${body.slice(-300)}`);
  }
}

function floorCheck(status: number, body: string): void {
  if (status !== 200) throw new Error(`floor request failed: HTTP ${status} ${body.slice(0, 200)}`);
}

/** One block each of floor and project, in alternating order: the per-block ratios of CPU, p50 and throughput. */
interface BlockRatios {
  readonly cpu: number[];
  readonly p50: number[];
  readonly throughput: number[];
  readonly project: { cpuMs: number[]; p50Ms: number[]; rps: number[] };
  readonly floor: { cpuMs: number[]; p50Ms: number[]; rps: number[] };
}

interface Side {
  readonly server: ServerProcess;
  readonly spec: LoadSpec;
}

async function interleaved(
  floor: ServerProcess,
  project: ServerProcess,
  floorSpec: LoadSpec,
  projectSpec: LoadSpec,
  blocks: number,
): Promise<BlockRatios> {
  const [out] = await interleavedFloors(
    { server: project, spec: projectSpec },
    [{ server: floor, spec: floorSpec }],
    blocks,
  );
  return out!;
}

/**
 * The project against several floors in the same blocks: each block runs the project once and every floor once,
 * in an order that rotates from block to block (so none is always first or last), and each floor's ratios are
 * taken against the same project run. One project run serves several floors, rather than one run per floor.
 */
async function interleavedFloors(project: Side, floors: readonly Side[], blocks: number): Promise<BlockRatios[]> {
  const outs: BlockRatios[] = floors.map(() => ({
    cpu: [],
    p50: [],
    throughput: [],
    project: { cpuMs: [], p50Ms: [], rps: [] },
    floor: { cpuMs: [], p50Ms: [], rps: [] },
  }));
  const sides = [project, ...floors];
  for (let b = 0; b < blocks; b++) {
    // Rotated by one side a block: block 0 starts with the first floor and ends with the project, block 1 starts
    // with the next side; with one floor, floor and project alternate as before.
    const order = sides.map((_, i) => (i + b + 1) % sides.length);
    const results = new Array<LoadResult>(sides.length);
    for (const i of order) results[i] = await runLoad(sides[i]!.server, sides[i]!.spec);
    const p = results[0]!;
    const pp50 = median(p.latencies);
    const prps = p.latencies.length / p.seconds;
    floors.forEach((_, k) => {
      const f = results[k + 1]!;
      const out = outs[k]!;
      const fp50 = median(f.latencies);
      const frps = f.latencies.length / f.seconds;
      out.cpu.push(p.cpuMsPerRequest / f.cpuMsPerRequest);
      out.p50.push(pp50 / fp50);
      out.throughput.push(prps / frps);
      out.project.cpuMs.push(p.cpuMsPerRequest);
      out.project.p50Ms.push(pp50);
      out.project.rps.push(prps);
      out.floor.cpuMs.push(f.cpuMsPerRequest);
      out.floor.p50Ms.push(fp50);
      out.floor.rps.push(frps);
    });
  }
  return outs;
}

const ms = (values: readonly number[]): string => `${fmt(median(values))} ms`;

export async function orchestrationBench(ctx: OrchestrationContext): Promise<BenchRow[]> {
  const rows: BenchRow[] = [];
  const blocks = ctx.quick ? 3 : 5;
  // Requests a block. Figures are per request, so the sides need not answer as many; each block is made long
  // enough for its own side. A bare round trip costs 0.03-0.2 ms of CPU: blocks of 60 (a few ms of CPU) measured
  // it at three times what blocks of 600 measure, and blocks of 600 (about 0.2 s) still moved by half from row to
  // row, so the bare server answers 1,500 a block.
  const bareBlock = ctx.quick ? 60 : 1500;
  const perBlock = ctx.quick ? 60 : 600;
  // The rows whose every request costs several ms of CPU (Redis, --workers, SSE, the Redis floor): 200 a block
  // is already 1 to 2 s of it.
  const perSlowBlock = ctx.quick ? 60 : 200;
  // Requests of each prompt each server answers before its first timed block (the floors too), in chunks that
  // alternate the prompts. V8 optimizes a function once it has run enough bytecode (its interrupt budget), and most
  // of a request's functions run once a request: the project's CPU per request kept falling for 2,000-4,000
  // requests (4.6 ms over the first 400 of one run, 1.2-1.6 ms after 4,000), so 400 a prompt timed its warm-up.
  const warmup = ctx.quick ? 100 : WARMUP_PER_PROMPT;
  const floor = await startServerProcess('floor');
  const warmUps = new Map<ServerProcess, WarmUp>();
  warmUps.set(
    floor,
    await warmUp(floor, ctx.prompts, warmup, (prompt, n) => spec(prompt, false, 1, n, floorCheck, '/json')),
  );
  const servers: ServerProcess[] = [floor];
  const prefixes: string[] = [];
  const project = async (store: Store, workers: boolean): Promise<ServerProcess> => {
    const redisPrefix = `disagg-bench:${randomUUID()}:`;
    if (store === 'redis') prefixes.push(redisPrefix);
    const server = await startServerProcess({
      redisUrl: store === 'redis' ? ctx.redis!.url : null,
      redisPrefix,
      workers,
    });
    servers.push(server);
    // Warm up the JIT, the sockets and the stores before anything is timed: on every prompt the rows time (each
    // takes its own paths through the API and the tokenizer), for as many requests as the optimizing compiler
    // takes to settle (see `warmup` above).
    warmUps.set(server, await warmUp(server, ctx.prompts, warmup, (prompt, n) => spec(prompt, false, 1, n, jsonCheck)));
    return server;
  };
  try {
    const stores: Store[] = ctx.redis ? ['memory', 'redis'] : ['memory'];
    const single: Partial<Record<Store, ServerProcess>> = {};
    for (const store of stores) {
      single[store] = await project(store, false);
      const requests = store === 'memory' ? perBlock : perSlowBlock;
      rows.push(
        ...(await concurrencyOne(ctx, floor, single[store]!, store, 'one thread', blocks, requests, bareBlock, {
          perPrompt: warmup,
          server: warmUps.get(single[store]!)!,
          floor: warmUps.get(floor)!,
        })),
      );
    }
    ctx.progress('orchestration: 100-event SSE against the SSE floor');
    const chat = ctx.prompts[0]!;
    const sse = await interleaved(
      floor,
      single.memory!,
      { ...spec(chat, true, 1, bareBlock, floorCheck), path: '/sse' },
      spec(chat, true, 1, perSlowBlock, sseCheck),
      blocks,
    );
    const section = `streaming (memory, concurrency 1, ${chat.name} prompt)`;
    rows.push(
      ratioRow(
        {
          section,
          metric: 'server CPU per streamed request',
          floor: 'bare node:http writing 100 SSE events',
          note: `project ${ms(sse.project.cpuMs)}, floor ${ms(sse.floor.cpuMs)} CPU per request`,
        },
        sse.cpu,
      ),
      ratioRow(
        {
          section,
          metric: 'wall time to the end of the stream, p50',
          floor: 'the same, bare',
          note: `project ${ms(sse.project.p50Ms)}, floor ${ms(sse.floor.p50Ms)}`,
        },
        sse.p50,
      ),
    );

    const workers = await project('memory', true);
    rows.push(
      ...(await concurrencyOne(ctx, floor, workers, 'memory', '--workers', blocks, perSlowBlock, bareBlock, {
        perPrompt: warmup,
        server: warmUps.get(workers)!,
        floor: warmUps.get(floor)!,
      })),
    );
    for (const concurrency of CONCURRENCIES) {
      for (const [label, server] of [
        ['one thread', single.memory!],
        ['--workers', workers],
      ] as const) {
        ctx.progress(`orchestration: throughput at concurrency ${concurrency}, ${label}`);
        // Long enough for each side: the bare server answers 2.5k-10k requests/s here, so its blocks are 3,000
        // requests (300 were over in 30 ms, and its rate moved 2.5-fold from row to row); the project's 300 or more.
        const scale = ctx.quick ? 0.5 : 1;
        const requests = Math.round(scale * Math.max(300, concurrency * 8));
        const floorRequests = Math.round(scale * Math.max(3000, concurrency * 8));
        const t = await interleaved(
          floor,
          server,
          spec(chat, false, concurrency, floorRequests, floorCheck, '/json'),
          spec(chat, false, concurrency, requests, jsonCheck),
          ctx.quick ? 2 : 3,
        );
        const target =
          concurrency === THROUGHPUT_TARGET.concurrency && label === '--workers'
            ? {
                text: `>= ${THROUGHPUT_TARGET.share} (${THROUGHPUT_TARGET.share * 100}% of bare)`,
                ok: (s: { median: number }) => s.median >= THROUGHPUT_TARGET.share,
              }
            : undefined;
        rows.push(
          ratioRow(
            {
              section: `throughput (memory, ${label}, concurrency ${concurrency})`,
              metric: 'requests per second',
              floor: 'bare node:http JSON round trip, same client',
              note: `project ${fmt(median(t.project.rps))} req/s (p50 ${ms(t.project.p50Ms)}), floor ${fmt(median(t.floor.rps))} req/s; ${chat.name} prompt`,
            },
            t.throughput,
            target,
          ),
        );
      }
    }
    // Every server closes clean: no KV blob left in memory or in Redis.
    for (const server of servers.splice(0)) {
      const left = await server.close();
      if (left !== 0) throw new Error(`a bench server left ${left} KV blob(s) behind`);
    }
    // The records stay readable for their TTL, as they should; the benchmark removes them, and fails on a leak
    // (a KV blob, a record that never ended), which it leaves in place for the hygiene row to count.
    for (const prefix of prefixes) {
      const leaks = await deleteAllButLeaks(ctx.redis!.client, prefix);
      if (leakCount(leaks) > 0) ctx.progress(`orchestration left behind in Redis: ${describeLeaks(leaks)}`);
    }
  } finally {
    await Promise.all(servers.map((s) => s.close().catch(() => 0)));
  }
  return rows;
}

/** Requests of each prompt a server answers before it is timed (full runs). */
const WARMUP_PER_PROMPT = 2000;
/** Warm-up requests a chunk: the prompts alternate chunk by chunk. */
const WARMUP_CHUNK = 200;

/** What a server's warm-up measured: its CPU per request over the first and the last chunk of each prompt. */
interface WarmUp {
  readonly perPrompt: number;
  readonly firstMs: ReadonlyMap<string, number>;
  readonly lastMs: ReadonlyMap<string, number>;
}

/** Untimed requests until each prompt has had `perPrompt`, in chunks that alternate the prompts. */
async function warmUp(
  server: ServerProcess,
  prompts: readonly BenchPrompt[],
  perPrompt: number,
  specFor: (prompt: BenchPrompt, requests: number) => LoadSpec,
): Promise<WarmUp> {
  const firstMs = new Map<string, number>();
  const lastMs = new Map<string, number>();
  for (let done = 0; done < perPrompt; done += WARMUP_CHUNK) {
    for (const prompt of prompts) {
      const r = await runLoad(server, specFor(prompt, Math.min(WARMUP_CHUNK, perPrompt - done)));
      if (done === 0) firstMs.set(prompt.name, r.cpuMsPerRequest);
      lastMs.set(prompt.name, r.cpuMsPerRequest);
    }
  }
  return { perPrompt, firstMs, lastMs };
}

/** `X ms over the first chunk to Y ms over the last` of one prompt's warm-up. */
function warmUpTrend(w: WarmUp, prompt: BenchPrompt): string {
  const first = w.firstMs.get(prompt.name);
  const last = w.lastMs.get(prompt.name);
  if (first === undefined || last === undefined) return 'unmeasured';
  return `from ${fmt(first)} ms over the first ${WARMUP_CHUNK} to ${fmt(last)} ms over the last ${WARMUP_CHUNK}`;
}

function spec(
  prompt: BenchPrompt,
  stream: boolean,
  concurrency: number,
  requests: number,
  check: LoadSpec['check'],
  path: string = prompt.path,
): LoadSpec {
  return {
    path,
    bodies: prompt.bodies.map((body) =>
      JSON.stringify({ ...body, max_tokens: OUTPUT_TOKENS, ...(stream ? { stream: true } : {}) }),
    ),
    concurrency,
    requests,
    check,
  };
}

/** Non-streamed requests of one prompt at concurrency 1: the project against each floor, in the same blocks. */
function jsonAtConcurrencyOne(
  floors: readonly ServerProcess[],
  server: ServerProcess,
  prompt: BenchPrompt,
  blocks: number,
  perBlock: number,
  bareBlock: number,
): Promise<BlockRatios[]> {
  // The bare floor (the first) answers bareBlock requests a block: it costs 0.03-0.2 ms of CPU each.
  return interleavedFloors(
    { server, spec: spec(prompt, false, 1, perBlock, jsonCheck) },
    floors.map((f, i) => ({
      server: f,
      spec: spec(prompt, false, 1, i === 0 ? bareBlock : perBlock, floorCheck, '/json'),
    })),
    blocks,
  );
}

/**
 * A floor that also moves the request's KV blob through Redis (one SET and one GETDEL of that many bytes, same
 * client library): the Redis rows are set against it too, for what the project adds beyond the traffic its
 * handoff cannot avoid, beside the bare round trip's ratio the target is judged on.
 */
async function startRedisFloor(ctx: OrchestrationContext, prompt: BenchPrompt, warmup: number) {
  const blobBytes = Math.round(median(prompt.tokens)) * KV_BYTES_PER_TOKEN;
  const server = await startServerProcess({
    redisFloor: { redisUrl: ctx.redis!.url, redisPrefix: `disagg-bench:${randomUUID()}:`, blobBytes },
  });
  try {
    await warmUp(server, [prompt], warmup, (p, n) => spec(p, false, 1, n, floorCheck, '/json'));
  } catch (err) {
    await server.close().catch(() => 0);
    throw err;
  }
  return { server, blobBytes };
}

/** CPU per request and p50 at concurrency 1 for each prompt, against the bare JSON round trip; Redis commands too. */
async function concurrencyOne(
  ctx: OrchestrationContext,
  floor: ServerProcess,
  server: ServerProcess,
  store: Store,
  label: 'one thread' | '--workers',
  blocks: number,
  perBlock: number,
  bareBlock: number,
  warm: { readonly perPrompt: number; readonly server: WarmUp; readonly floor: WarmUp },
): Promise<BenchRow[]> {
  const warmup = warm.perPrompt;
  const rows: BenchRow[] = [];
  const commands = new Map<string, number>();
  let requests = 0;
  for (const prompt of ctx.prompts) {
    const withRedisFloor = ctx.redis !== null && store === 'redis' && label === 'one thread';
    const redisFloor = withRedisFloor ? await startRedisFloor(ctx, prompt, warmup) : null;
    ctx.progress(
      `orchestration: ${store} stores, ${label}, concurrency 1, ${prompt.name} prompt${redisFloor ? ', against the bare and the Redis floor' : ''}`,
    );
    const before = ctx.redis && store === 'redis' ? await commandCounts(ctx.redis.client) : null;
    let r: BlockRatios;
    let beyondBlob: BlockRatios | undefined;
    // Counted before the Redis floor closes, so its QUIT is not among them.
    let after: Map<string, number> | null = null;
    try {
      [r, beyondBlob] = (await jsonAtConcurrencyOne(
        redisFloor ? [floor, redisFloor.server] : [floor],
        server,
        prompt,
        blocks,
        perBlock,
        bareBlock,
      )) as [BlockRatios, BlockRatios?];
      if (before) after = await commandCounts(ctx.redis!.client);
    } finally {
      await redisFloor?.server.close();
    }
    if (before && after) {
      // The Redis floor's own commands are counted too: take out its SET and GETDEL, one each a request.
      const between = countsBetween(before, after);
      if (redisFloor) {
        for (const name of ['set', 'getdel']) between.set(name, (between.get(name) ?? 0) - blocks * perBlock);
      }
      for (const [name, n] of between) if (n > 0) commands.set(name, (commands.get(name) ?? 0) + n);
      requests += blocks * perBlock;
    }
    const section = `orchestration (${store}, ${label}, concurrency 1, ${prompt.name} prompt)`;
    const target = label === 'one thread' ? CPU_TARGET[store] : undefined;
    rows.push(
      ratioRow(
        {
          section,
          metric: 'server CPU per request',
          floor: 'bare node:http JSON round trip',
          note:
            `project ${ms(r.project.cpuMs)}, floor ${ms(r.floor.cpuMs)} CPU per request (every thread of the process); ` +
            `${median(prompt.tokens)} prompt tokens (${prompt.description}), ${OUTPUT_TOKENS} output; ` +
            `timed after ${warm.perPrompt} warm-up requests of each prompt, over which the project's CPU per request ` +
            `went ${warmUpTrend(warm.server, prompt)} and the floor's ${warmUpTrend(warm.floor, prompt)}`,
        },
        r.cpu,
        target ? { text: `<= ${target}x (median)`, ok: (s) => s.median <= target } : undefined,
      ),
      ratioRow(
        {
          section,
          metric: 'wall time per request, p50',
          floor: 'the same, bare',
          note: `project ${ms(r.project.p50Ms)}, floor ${ms(r.floor.p50Ms)}`,
        },
        r.p50,
      ),
    );
    if (redisFloor && beyondBlob) {
      rows.push(
        ratioRow(
          {
            section,
            metric: 'server CPU per request, beyond the KV blob through Redis',
            floor: "bare node:http JSON round trip + SET and GETDEL of the request's KV blob, same client",
            note: `project ${ms(beyondBlob.project.cpuMs)}, floor ${ms(beyondBlob.floor.cpuMs)} CPU per request; a ${fmt(redisFloor.blobBytes / 1e6)} MB blob (${KV_BYTES_PER_TOKEN} bytes per prompt token, the null backend's KV); the same project blocks as the row above`,
          },
          beyondBlob.cpu,
        ),
      );
    }
  }
  if (requests > 0) {
    const total = [...commands.values()].reduce((a, b) => a + b, 0);
    const perRequest = total / requests;
    const breakdown = [...commands.entries()]
      .sort((a, b) => b[1] - a[1])
      .map(([name, n]) => `${name.toUpperCase()} ${fmt(n / requests)}`)
      .join(', ');
    rows.push({
      section: `orchestration (redis, ${label}, concurrency 1)`,
      metric: 'Redis commands per request',
      value: perRequest,
      unit: '',
      target: `<= ${COMMANDS_TARGET}`,
      pass: perRequest <= COMMANDS_TARGET,
      note: `INFO commandstats of the private redis-server over ${requests} requests: ${breakdown}`,
    });
  }
  return rows;
}
