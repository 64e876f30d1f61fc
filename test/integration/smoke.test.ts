/**
 * scripts/smoke.ts as an operator runs it: against the embedded server standing in for a deployed
 * endpoint (every check passes), against a port where nothing listens (fails fast), and misused.
 */
import { spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServer, type RunningServer } from '../../lib/local/server';

const root = fileURLToPath(new URL('../..', import.meta.url));
const API_KEY = 'smoke-key';
const CHECKS = [
  'GET /v1/models',
  'chat completion',
  'chat completion, stream',
  'rejects invalid JSON',
  'rejects max_tokens: 0',
  'rejects an unknown model',
];

interface Run {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs the smoke script to exit; a run that outlives `timeoutMs` is killed and reported as code null. */
function smoke(args: string[], extraEnv: Record<string, string> = {}, timeoutMs = 40_000): Promise<Run> {
  const env = { ...process.env };
  // Only what a test passes: a key in this environment must not change what the script sees.
  delete env.DISAGG_API_KEY;
  Object.assign(env, extraEnv);
  const child = spawn(process.execPath, ['--import', 'tsx', 'scripts/smoke.ts', ...args], { cwd: root, env });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (text: string) => (stdout += text));
  child.stderr.setEncoding('utf8').on('data', (text: string) => (stderr += text));
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  return new Promise((resolve) =>
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    }),
  );
}

/** The table's rows as [check, result, detail], read from the box-drawn lines. */
function rows(stdout: string): string[][] {
  return stdout
    .split('\n')
    .filter((line) => line.startsWith('│'))
    .map((line) =>
      line
        .split('│')
        .slice(1, -1)
        .map((cell) => cell.trim()),
    )
    .slice(1);
}

/** A loopback port with nothing listening: bound by the OS, then released. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

let endpoint: RunningServer;

beforeAll(async () => {
  endpoint = await startServer({ port: 0, engine: { timeScale: 0 }, apiKey: API_KEY });
});

afterAll(async () => {
  await endpoint.close();
});

describe('npm run smoke', () => {
  it('passes every check against a working endpoint and exits 0', async () => {
    const run = await smoke(['--url', endpoint.url, '--api-key', API_KEY]);
    expect(run.code, run.stdout + run.stderr).toBe(0);
    const table = rows(run.stdout);
    expect(table.map((r) => r[0])).toEqual(CHECKS);
    for (const [check, result, , ms] of table) {
      expect(result, `${check}: ${run.stdout}`).toBe('PASS');
      expect(ms).toMatch(/^\d+$/);
    }
    expect(run.stdout).toContain('6 of 6 checks passed');
    // The model was discovered from GET /v1/models and the bad inputs got the server's own errors.
    expect(run.stdout).toContain('serves llama-3.3-70b');
    expect(run.stdout).toMatch(/HTTP 400 invalid_request_error: max_tokens must be an integer/);
    expect(run.stdout).toMatch(/HTTP 404 not_found_error/);
  }, 60_000);

  it('accepts the /v1 URL and the key from DISAGG_API_KEY', async () => {
    const run = await smoke(['--url', `${endpoint.url}/v1/`], { DISAGG_API_KEY: API_KEY });
    expect(run.code, run.stdout + run.stderr).toBe(0);
    expect(run.stdout).toContain('6 of 6 checks passed');
  }, 60_000);

  it('fails a wrong key: exit 1, and no bad-input check passes on a 401', async () => {
    const run = await smoke(['--url', endpoint.url, '--api-key', 'wrong']);
    expect(run.code).toBe(1);
    const table = rows(run.stdout);
    expect(table.map((r) => r[0])).toEqual(CHECKS);
    for (const [, result] of table) expect(result).toBe('FAIL');
    expect(table[0]![2]).toContain('HTTP 401');
  }, 60_000);

  it('reports every check failed, quickly, when nothing listens at the URL: exit 1', async () => {
    const started = Date.now();
    const run = await smoke(['--url', `http://127.0.0.1:${await closedPort()}`, '--timeout', '10']);
    expect(run.code, run.stdout + run.stderr).toBe(1);
    const table = rows(run.stdout);
    expect(table.map((r) => r[0])).toEqual(CHECKS);
    for (const [, result] of table) expect(result).toBe('FAIL');
    expect(table[0]![2]).toMatch(/ECONNREFUSED/);
    expect(run.stdout).toContain('0 of 6 checks passed');
    expect(Date.now() - started).toBeLessThan(30_000);
  }, 60_000);

  it('exits 2 with usage on stderr when --url is missing or not a URL', async () => {
    for (const args of [[], ['--api-key', 'k'], ['--url', 'not a url'], ['--url', endpoint.url, '--bogus']]) {
      const run = await smoke(args);
      expect(run.code, args.join(' ')).toBe(2);
      expect(run.stderr).toContain('usage: npm run smoke -- --url');
      expect(run.stdout).toBe('');
    }
  }, 60_000);
});
