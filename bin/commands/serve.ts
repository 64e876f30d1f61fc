import { readFileSync } from 'node:fs';
import { formatPool } from '../../lib/core/emulator';
import { parseCorsOrigins } from '../../lib/core/api/cors';
import type { EngineConfigInput, KvFailurePolicy } from '../../lib/core/engine/config';
import { createLogger, LOG_LEVELS, type LogLevel } from '../../lib/local/request-log';
import { API_DEFAULTS, startServer, type ServeOptions } from '../../lib/local/server';
import { parseCount, UsageError } from './errors';

export interface ServeFlags {
  config?: string;
  host?: string;
  port?: string;
  model?: string;
  prefill?: string;
  decode?: string;
  colocated?: string;
  timeScale?: string;
  decodeBatch?: string;
  colocateBelow?: string;
  maxPrefillQueue?: string;
  maxDecodeQueue?: string;
  kvFailurePolicy?: string;
  stack?: string;
  redisUrl?: string;
  backend?: string;
  bedrockModelId?: string;
  workers?: boolean;
  corsOrigin?: string;
  debug?: boolean;
  logLevel?: string;
  drainTimeout?: string;
  auth: boolean;
}

/** Keys a --config JSON file may hold (the same names as the flags, camelCase). */
const FILE_KEYS = [
  'host',
  'port',
  'model',
  'prefill',
  'decode',
  'colocated',
  'timeScale',
  'decodeBatch',
  'colocateBelow',
  'maxPrefillQueue',
  'maxDecodeQueue',
  'kvFailurePolicy',
  'stack',
  'redisUrl',
  'backend',
  'bedrockModelId',
  'workers',
  'corsOrigin',
  'logLevel',
  'drainTimeout',
] as const;

function readConfigFile(path: string): Partial<Record<(typeof FILE_KEYS)[number], string | number | boolean>> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(path, 'utf8'));
  } catch (err) {
    throw new UsageError(`cannot read --config ${path}: ${(err as Error).message}`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new UsageError(`--config ${path} must hold a JSON object`);
  }
  for (const key of Object.keys(parsed)) {
    if (!(FILE_KEYS as readonly string[]).includes(key)) {
      throw new UsageError(`--config ${path}: unknown key "${key}"; allowed keys: ${FILE_KEYS.join(', ')}`);
    }
  }
  return parsed as Partial<Record<(typeof FILE_KEYS)[number], string | number | boolean>>;
}

function timeScale(value: string): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n < 0) {
    throw new UsageError(`timeScale must be a number >= 0 (1 = real time, 0 = never sleep), got "${value}"`);
  }
  return n;
}

/** `--cors-origin`: `*`, or origins like http://localhost:3000, comma-separated. */
function corsOrigins(value: string | undefined): string[] {
  try {
    return parseCorsOrigins(value, '--cors-origin');
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
}

/** Flags beat environment variables, which beat the config file, which beats the defaults. */
export function serveOptions(
  flags: ServeFlags,
  env: NodeJS.ProcessEnv,
): ServeOptions & { host: string; port: number; corsOrigins: string[]; drainMs: number } {
  const file = flags.config ? readConfigFile(flags.config) : {};
  const pick = (
    flag: string | undefined,
    envValue: string | undefined,
    key: (typeof FILE_KEYS)[number],
  ): string | undefined => flag ?? envValue ?? (file[key] === undefined ? undefined : String(file[key]));
  const count = (name: string, value: string | undefined, min: number, max: number): number | undefined =>
    value === undefined ? undefined : parseCount(name, value, min, max);

  const backend = pick(flags.backend, undefined, 'backend') ?? 'reference';
  if (backend !== 'reference' && backend !== 'bedrock') {
    throw new UsageError(`--backend must be one of reference, bedrock, got "${backend}"`);
  }
  const policy = pick(flags.kvFailurePolicy, undefined, 'kvFailurePolicy');
  if (policy !== undefined && policy !== 'fail' && policy !== 'recompute') {
    throw new UsageError(`--kv-failure-policy must be one of fail, recompute, got "${policy}"`);
  }
  const colocated = pick(flags.colocated, undefined, 'colocated');
  const scale = pick(flags.timeScale, env.DISAGG_TIME_SCALE, 'timeScale');
  const engine: EngineConfigInput = {
    model: pick(flags.model, undefined, 'model'),
    prefill: pick(flags.prefill, undefined, 'prefill'),
    decode: pick(flags.decode, undefined, 'decode'),
    colocated: colocated === 'none' ? null : colocated,
    timeScale: scale === undefined ? undefined : timeScale(scale),
    decodeBatchMax: count('--decode-batch', pick(flags.decodeBatch, undefined, 'decodeBatch'), 1, 4096),
    colocateAtOrBelowTokens: count(
      '--colocate-below',
      pick(flags.colocateBelow, undefined, 'colocateBelow'),
      0,
      10_000_000,
    ),
    maxPrefillQueue: count(
      '--max-prefill-queue',
      pick(flags.maxPrefillQueue, undefined, 'maxPrefillQueue'),
      1,
      1_000_000,
    ),
    maxDecodeQueue: count('--max-decode-queue', pick(flags.maxDecodeQueue, undefined, 'maxDecodeQueue'), 1, 1_000_000),
    kvFailurePolicy: policy as KvFailurePolicy | undefined,
    stack: pick(flags.stack, undefined, 'stack'),
  };
  const apiKey = flags.auth ? env.DISAGG_API_KEY?.trim() || undefined : null;
  if (file.workers !== undefined && typeof file.workers !== 'boolean') {
    throw new UsageError(
      `--config ${flags.config}: "workers" must be true or false, got ${JSON.stringify(file.workers)}`,
    );
  }
  const logLevel = pick(flags.logLevel, env.DISAGG_LOG_LEVEL, 'logLevel') ?? (flags.debug ? 'debug' : 'info');
  if (!(LOG_LEVELS as readonly string[]).includes(logLevel)) {
    throw new UsageError(`--log-level must be one of ${LOG_LEVELS.join(', ')}, got "${logLevel}"`);
  }
  return {
    engine,
    logLevel: logLevel as LogLevel,
    host: pick(flags.host, undefined, 'host') ?? API_DEFAULTS.host,
    port: count('--port', pick(flags.port, env.PORT, 'port'), 0, 65_535) ?? API_DEFAULTS.port,
    redisUrl: pick(flags.redisUrl, env.REDIS_URL, 'redisUrl') ?? null,
    apiKey,
    backend,
    bedrockModelId: pick(flags.bedrockModelId, env.DISAGG_BEDROCK_MODEL_ID, 'bedrockModelId'),
    workers: flags.workers ?? file.workers === true,
    corsOrigins: corsOrigins(pick(flags.corsOrigin, env.DISAGG_CORS_ORIGINS, 'corsOrigin')),
    debug: flags.debug === true,
    drainMs:
      (count('--drain-timeout', pick(flags.drainTimeout, env.DISAGG_DRAIN_SECONDS, 'drainTimeout'), 0, 3600) ??
        DEFAULT_SERVE_DRAIN_SECONDS) * 1000,
  };
}

/** Seconds `disagg serve` lets admitted requests finish after SIGTERM or SIGINT. */
export const DEFAULT_SERVE_DRAIN_SECONDS = 30;

export async function runServe(flags: ServeFlags): Promise<void> {
  const options = serveOptions(flags, process.env);
  const say = (line: string): void => void process.stdout.write(`${line}\n`);
  if (options.apiKey === null) {
    process.stderr.write('WARNING: authentication is off (--no-auth): anyone who can reach this port can use it.\n');
  }
  // JSON lines on standard output, after the banner; operator errors go through the same logger.
  const logger = createLogger(options.logLevel ?? 'info');
  const server = await startServer({ ...options, logger, log: (line) => logger.error(line) });
  const c = server.config;
  const generated = options.apiKey === undefined;
  say(`disagg serving on ${server.url}`);
  say(
    `  model ${c.model.id}; prefill ${formatPool(c.prefillPool)}, decode ${formatPool(c.decodePool)}, colocated baseline ${c.colocatedPool ? formatPool(c.colocatedPool) : 'none'}`,
  );
  say(
    `  timeScale ${c.timeScale} (emulated device time ${c.timeScale === 0 ? 'is not slept' : `is slept x${c.timeScale}`}); decode batch up to ${c.decodeBatchMax}`,
  );
  say(
    `  stages: ${options.workers ? 'prefill and decode in a worker thread of their own, the queue and records in another (--workers)' : 'in this thread'}`,
  );
  say(
    `  KV and results: ${options.redisUrl ? `Redis at ${options.redisUrl.replace(/\/\/[^@]*@/, '//***@')}` : 'in memory'}; backend: ${options.backend}`,
  );
  if (server.apiKey)
    say(`  API key${generated ? ' (generated; set DISAGG_API_KEY to choose one)' : ''}: ${server.apiKey}`);
  if (options.corsOrigins.length > 0) say(`  CORS: browser pages from ${options.corsOrigins.join(', ')} may call it`);
  say(`  dashboard: ${server.dashboardUrl}`);
  say(`  metrics: ${server.url}/metrics (Prometheus); log: JSON lines at ${options.logLevel ?? 'info'} and above`);
  say('');
  say('Try:');
  say(`  curl -N ${server.url}/v1/chat/completions \\`);
  say(
    `    -H 'content-type: application/json'${server.apiKey ? ` -H 'authorization: Bearer ${server.apiKey}'` : ''} \\`,
  );
  say(
    `    -d '{"model": "${c.model.id}", "stream": true, "max_tokens": 32, "messages": [{"role": "user", "content": "Why split prefill from decode?"}]}'`,
  );
  let shuttingDown = false;
  const shutdown = (signal: NodeJS.Signals): void => {
    if (shuttingDown) {
      say(`${signal} again: exiting now`);
      process.exit(1);
    }
    shuttingDown = true;
    say(
      `${signal}: shutting down: no new requests; letting ${server.inFlight()} in flight finish (up to ${options.drainMs / 1000} s)`,
    );
    server.close({ drainMs: options.drainMs }).then(
      (report) => {
        say(
          `stopped: ${report.inFlight - report.endedAtDeadline} of ${report.inFlight} in flight finished` +
            (report.endedAtDeadline > 0 ? `; ${report.endedAtDeadline} ended at the drain deadline, told why` : ''),
        );
        process.exit(0);
      },
      (err: unknown) => {
        logger.error(`error while shutting down: ${(err as Error).message}`);
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', shutdown);
  process.on('SIGTERM', shutdown);
}
