/**
 * `disagg serve` as a user runs it: a child process that prints how to reach it, serves over
 * loopback with the key it printed (or none with --no-auth), and exits on SIGTERM.
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('../..', import.meta.url));
const children: ChildProcessWithoutNullStreams[] = [];

interface Served {
  readonly child: ChildProcessWithoutNullStreams;
  stdout: string;
  stderr: string;
  readonly exited: Promise<number | string | null>;
}

/** Spawns `disagg serve` with the given flags, with no key, Redis or pacing inherited from this environment. */
function serve(flags: string[]): Served {
  const env = { ...process.env };
  for (const name of ['DISAGG_API_KEY', 'REDIS_URL', 'DISAGG_TIME_SCALE', 'PORT']) delete env[name];
  const child = spawn(process.execPath, ['bin/disagg.mjs', 'serve', '--port', '0', '--time-scale', '0', ...flags], {
    cwd: root,
    env,
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  children.push(child);
  const served: Served = {
    child,
    stdout: '',
    stderr: '',
    exited: new Promise((resolve) => child.once('exit', (code, signal) => resolve(code ?? signal))),
  };
  child.stdout.setEncoding('utf8').on('data', (text: string) => (served.stdout += text));
  child.stderr.setEncoding('utf8').on('data', (text: string) => (served.stderr += text));
  return served;
}

/** Resolves once stdout matches `pattern`; rejects if the child exits first or `timeoutMs` passes. */
async function waitForStdout(served: Served, pattern: RegExp, timeoutMs = 20_000): Promise<RegExpMatchArray> {
  const deadline = Date.now() + timeoutMs;
  let exited = false;
  void served.exited.then(() => (exited = true));
  for (;;) {
    const match = served.stdout.match(pattern);
    if (match) return match;
    if (exited || Date.now() > deadline) {
      throw new Error(
        `disagg serve ${exited ? 'exited' : 'timed out'} before printing ${String(pattern)}\nstdout:\n${served.stdout}\nstderr:\n${served.stderr}`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

/** Waits for the child to exit after SIGTERM; fails (and kills it) if it does not within `timeoutMs`. */
async function terminate(served: Served, timeoutMs = 10_000): Promise<number | string | null> {
  served.child.kill('SIGTERM');
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<'timeout'>((resolve) => (timer = setTimeout(() => resolve('timeout'), timeoutMs)));
  const result = await Promise.race([served.exited, timeout]);
  clearTimeout(timer);
  if (result === 'timeout') served.child.kill('SIGKILL');
  return result;
}

function chat(url: string, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(`${url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify({
      model: 'llama-3.3-70b',
      max_tokens: 4,
      messages: [{ role: 'user', content: 'Why split prefill from decode?' }],
    }),
    signal: AbortSignal.timeout(15_000),
  });
}

afterAll(() => {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
});

describe('disagg serve', () => {
  it('prints its URL, a generated API key and a curl example; serves with that key; exits on SIGTERM', async () => {
    const served = serve([]);
    const [, url] = await waitForStdout(served, /disagg serving on (http:\/\/127\.0\.0\.1:\d+)\n/);
    const [, key] = await waitForStdout(served, /API key \(generated[^)]*\): (sk-disagg-[A-Za-z0-9_-]+)\n/);
    await waitForStdout(served, /curl -N .*\/v1\/chat\/completions/);
    expect(served.stdout).toContain(`authorization: Bearer ${key!}`);
    expect(served.stdout).toContain(`curl -N ${url!}/v1/chat/completions`);

    const ok = await chat(url!, { authorization: `Bearer ${key!}` });
    expect(ok.status).toBe(200);
    const body = (await ok.json()) as { choices: { message: { content: string } }[]; disagg: { mode: string } };
    expect(body.choices[0]!.message.content.length).toBeGreaterThan(0);
    expect(body.disagg.mode).toBe('disaggregated');
    expect((await chat(url!)).status).toBe(401);

    expect(await terminate(served)).toBe(0);
    expect(served.stdout).toContain('shutting down');
  }, 45_000);

  it('--no-auth warns on stderr and serves without a key', async () => {
    const served = serve(['--no-auth']);
    const [, url] = await waitForStdout(served, /disagg serving on (http:\/\/127\.0\.0\.1:\d+)\n/);
    await waitForStdout(served, /curl -N /);
    expect(served.stderr).toMatch(/WARNING: authentication is off/);
    expect(served.stdout).not.toMatch(/API key/);
    expect(served.stdout).not.toMatch(/authorization: Bearer/);

    const ok = await chat(url!);
    expect(ok.status).toBe(200);
    expect(await terminate(served)).toBe(0);
  }, 45_000);

  it('--workers says the stages run in threads of their own, serves, and exits on SIGTERM', async () => {
    const served = serve(['--no-auth', '--workers']);
    const [, url] = await waitForStdout(served, /disagg serving on (http:\/\/127\.0\.0\.1:\d+)\n/, 60_000);
    await waitForStdout(served, /stages: prefill and decode in worker threads of their own \(--workers\)/);
    const ok = await chat(url!);
    expect(ok.status).toBe(200);
    expect(await terminate(served)).toBe(0);
  }, 90_000);
});
