/**
 * `disagg serve` (or `npm start`) in a child process, as a user or an orchestrator runs it (tests, `npm run chaos`):
 * spawned with no key, Redis or pacing inherited from this environment, watched through its output, stopped with
 * signals.
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export const root = fileURLToPath(new URL('..', import.meta.url));
const children: ChildProcessWithoutNullStreams[] = [];

export interface Served {
  readonly child: ChildProcessWithoutNullStreams;
  stdout: string;
  stderr: string;
  readonly exited: Promise<number | string | null>;
}

/** Spawns `disagg serve` with the given flags (or `npm start --` with them, `via: 'npm'`) on a free port. */
export function serve(flags: string[], options: { via?: 'node' | 'npm'; env?: Record<string, string> } = {}): Served {
  const env: NodeJS.ProcessEnv = { ...process.env, ...options.env };
  for (const name of ['DISAGG_API_KEY', 'REDIS_URL', 'DISAGG_TIME_SCALE', 'PORT', 'DISAGG_DRAIN_SECONDS']) {
    if (!options.env?.[name]) delete env[name];
  }
  const args = ['--port', '0', ...(flags.includes('--time-scale') ? [] : ['--time-scale', '0']), ...flags];
  const child =
    options.via === 'npm'
      ? spawn('npm', ['start', '--silent', '--', ...args], { cwd: root, env, stdio: ['pipe', 'pipe', 'pipe'] })
      : spawn(process.execPath, ['bin/disagg.mjs', 'serve', ...args], {
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
export async function waitForStdout(served: Served, pattern: RegExp, timeoutMs = 20_000): Promise<RegExpMatchArray> {
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

/** The URL a served child printed. */
export async function servedUrl(served: Served, timeoutMs?: number): Promise<string> {
  return (await waitForStdout(served, /disagg serving on (http:\/\/127\.0\.0\.1:\d+)\n/, timeoutMs))[1]!;
}

/** Resolves with the child's exit code (or signal), or 'timeout' (and kills it) if it has not exited in time. */
export async function exitWithin(served: Served, timeoutMs: number): Promise<number | string | null> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<'timeout'>((resolve) => (timer = setTimeout(() => resolve('timeout'), timeoutMs)));
  const result = await Promise.race([served.exited, timeout]);
  clearTimeout(timer);
  if (result === 'timeout') served.child.kill('SIGKILL');
  return result;
}

/** Sends SIGTERM and waits for the child to exit; kills it if it does not within `timeoutMs`. */
export function terminate(served: Served, timeoutMs = 10_000): Promise<number | string | null> {
  served.child.kill('SIGTERM');
  return exitWithin(served, timeoutMs);
}

/** Kills every child still running (afterAll). */
export function killChildren(): void {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
}

// The client side: chat requests, streams read to their ends, a listener that refuses.

const MODEL = 'llama-3.3-70b';

export function chat(url: string, body: Record<string, unknown>, signal?: AbortSignal): Promise<Response> {
  return fetch(`${url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      model: MODEL,
      messages: [{ role: 'user', content: 'Why split prefill from decode?' }],
      ...body,
    }),
    signal: signal ?? AbortSignal.timeout(60_000),
  });
}

export interface StreamEnd {
  readonly status: number;
  readonly pieces: number;
  readonly finishReason: string | null;
  readonly errorCode: string | null;
  readonly done: boolean;
  /** The connection broke before the stream ended. */
  readonly reset: boolean;
}

/** Reads a chat stream to its end: how many pieces came, how it ended (finish reason or in-band error), [DONE]. */
export async function readStream(res: Response): Promise<StreamEnd> {
  let text = '';
  let reset = false;
  try {
    text = await res.text();
  } catch {
    reset = true;
  }
  let pieces = 0;
  let finishReason: string | null = null;
  let errorCode: string | null = null;
  for (const event of text.split('\n\n')) {
    if (!event.startsWith('data: {')) continue;
    const data = JSON.parse(event.slice(6)) as {
      choices?: { delta?: { content?: string }; finish_reason?: string | null }[];
      error?: { code: string };
    };
    if (data.error) errorCode = data.error.code;
    const choice = data.choices?.[0];
    if (choice?.delta?.content) pieces += 1;
    if (choice?.finish_reason) finishReason = choice.finish_reason;
  }
  return { status: res.status, pieces, finishReason, errorCode, done: text.includes('data: [DONE]'), reset };
}

/** Streams whose response headers came (so they were admitted) (so they were admitted), read to their ends in the background. */
export async function openStreams(url: string, count: number, maxTokens: number): Promise<Promise<StreamEnd>[]> {
  const responses = await Promise.all(
    Array.from({ length: count }, () => chat(url, { stream: true, max_tokens: maxTokens })),
  );
  return responses.map((res) => readStream(res));
}

export async function refused(url: string): Promise<boolean> {
  try {
    await fetch(`${url}/healthz`, { signal: AbortSignal.timeout(2000) });
    return false;
  } catch {
    return true;
  }
}
