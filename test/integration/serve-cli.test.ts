/**
 * `disagg serve` as a user runs it: a child process that prints how to reach it, serves over
 * loopback with the key it printed (or none with --no-auth), and exits on SIGTERM.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { killChildren, serve, terminate, waitForStdout } from '../../scripts/serve-process';

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

afterAll(killChildren);

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
    await waitForStdout(
      served,
      /stages: prefill and decode in a worker thread of their own, the queue and records in another \(--workers\)/,
    );
    const ok = await chat(url!);
    expect(ok.status).toBe(200);
    expect(await terminate(served)).toBe(0);
  }, 90_000);
});
