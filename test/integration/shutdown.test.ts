/**
 * Signals and outages as an operator meets them, against `disagg serve` in a child process: SIGTERM with
 * streams in flight (drain), SIGTERM through `npm start`, and a private Redis killed under the server while
 * clients disconnect. The process must never die of it, and every admitted request finishes or is told why.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { startPrivateRedis, type PrivateRedis } from '../../bench/redis-private';
import { createRedis } from '../../lib/adapters/redis-connection';
import { TERMINAL_STATES, type RequestRecord } from '../../lib/core/engine/record';
import { OWNER_LEASE_MS, OWNER_LOST, RECONCILE_EVERY_MS } from '../../lib/local/reconciler';
import { scanKeys } from '../../scripts/redis-leaks';
import {
  chat,
  exitWithin,
  killChildren,
  openStreams,
  refused,
  serve,
  servedUrl,
  terminate,
  type Served,
} from '../../scripts/serve-process';

afterAll(killChildren);

/** A private redis-server of the test's own, or the test skipped with the reason printed. */
async function privateRedisOrSkip(ctx: { skip: () => never }): Promise<PrivateRedis> {
  const redis = await startPrivateRedis();
  if (redis) return redis;
  console.warn('skipped: no redis-server on PATH to start a private Redis (CI installs it)');
  return ctx.skip();
}

describe('SIGTERM with streams in flight', () => {
  it('stops accepting first, lets every admitted stream finish, then exits 0', async () => {
    // timeScale 10 (emulated time slept ten times over): a reply, which may end at its own stop after about a hundred
    // tokens, takes seconds, so the signal lands mid-stream however fast the server's own work is.
    const served = serve(['--no-auth', '--time-scale', '10', '--drain-timeout', '30']);
    const url = await servedUrl(served);
    const streams = await openStreams(url, 6, 400);
    await new Promise((resolve) => setTimeout(resolve, 300));
    served.child.kill('SIGTERM');
    await expect.poll(() => refused(url), { timeout: 5000 }).toBe(true);
    const ends = await Promise.all(streams);
    expect(await exitWithin(served, 30_000)).toBe(0);
    for (const end of ends) {
      expect(end).toMatchObject({ status: 200, errorCode: null, done: true, reset: false });
      expect(end.finishReason).not.toBeNull();
      expect(end.pieces).toBeGreaterThan(1);
    }
    expect(served.stdout).toMatch(/SIGTERM: shutting down: no new requests; letting 6 in flight finish/);
    expect(served.stdout).toMatch(/stopped: 6 of 6 in flight finished\n/);
  }, 60_000);

  it('at the drain deadline ends what is left failed, in-band with the reason, and still exits 0', async () => {
    // A drain deadline of 0: whatever runs at the signal is what the deadline finds. timeScale 10, as above: at 1 a
    // reply could reach its own stop (after 134 tokens once) before the signal.
    const served = serve(['--no-auth', '--time-scale', '10', '--drain-timeout', '0']);
    const url = await servedUrl(served);
    const streams = await openStreams(url, 3, 4000);
    await new Promise((resolve) => setTimeout(resolve, 300));
    served.child.kill('SIGTERM');
    const ends = await Promise.all(streams);
    expect(await exitWithin(served, 20_000)).toBe(0);
    for (const end of ends)
      expect(end).toMatchObject({ status: 200, finishReason: null, errorCode: 'shutting_down', done: true });
    expect(served.stdout).toMatch(/3 ended at the drain deadline, told why/);
  }, 60_000);
});

describe('npm start', () => {
  it('passes SIGTERM to the server: it stops serving and exits', async () => {
    const served = serve(['--no-auth'], { via: 'npm' });
    const url = await servedUrl(served, 60_000);
    expect((await fetch(`${url}/healthz`)).status).toBe(200);
    expect(await terminate(served, 20_000)).toBe(0);
    // npm gone is not enough: the server it started must be gone too.
    expect(await refused(url)).toBe(true);
  }, 90_000);
});

describe('the store goes away under the server', () => {
  let redis: PrivateRedis | null = null;
  afterAll(async () => redis?.stop());

  it('survives clients leaving mid-stream, answers 503 with Retry-After, reports the store on /healthz, and exits 0 on SIGTERM', async (ctx) => {
    redis = await privateRedisOrSkip(ctx);
    const served: Served = serve(['--no-auth', '--time-scale', '1', '--redis-url', redis.url, '--drain-timeout', '5']);
    const url = await servedUrl(served);
    const leaving = new AbortController();
    const first = await chat(url, { stream: true, max_tokens: 2000 }, leaving.signal);
    expect(first.status).toBe(200);
    const reading = first.text().catch(() => 'aborted');
    const staying = await openStreams(url, 2, 2000);
    await redis.stop();
    // Clients disconnecting while the store is unreachable: their cancellation cannot be written.
    leaving.abort();
    await reading;
    await new Promise((resolve) => setTimeout(resolve, 1500));
    expect(served.child.exitCode).toBeNull();

    const during = await chat(url, { max_tokens: 4 });
    expect(during.status).toBe(503);
    expect(Number(during.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    const body = await during.text();
    expect(JSON.parse(body)).toMatchObject({ error: { type: 'server_error', code: 'store_unavailable' } });
    expect(body).not.toMatch(/ECONNREFUSED|127\.0\.0\.1|connect/i);

    const health = await fetch(`${url}/healthz`);
    expect(health.status).toBe(503);
    expect(await health.json()).toMatchObject({
      status: 'unavailable',
      dependencies: { store: { status: 'unavailable' } },
    });

    // SIGTERM during the outage: the streams still running are told why in-band; the process exits cleanly.
    served.child.kill('SIGTERM');
    const ends = await Promise.all(staying);
    expect(await exitWithin(served, 30_000)).toBe(0);
    for (const end of ends) {
      expect(end.done).toBe(true);
      expect(end.finishReason !== null || end.errorCode !== null).toBe(true);
    }
    expect(served.stderr).not.toMatch(/Unhandled|unhandled/);
  }, 90_000);
});

describe('SIGKILL mid-load, then a restart on the same Redis', () => {
  let redis: PrivateRedis | null = null;
  afterAll(async () => redis?.stop());

  it('the new server ends every request the dead one left unfinished, failed with owner_lost; no key lacks a TTL', async (ctx) => {
    redis = await privateRedisOrSkip(ctx);
    const flags = ['--no-auth', '--time-scale', '1', '--redis-url', redis.url];
    const first = serve(flags);
    const firstUrl = await servedUrl(first);
    const streams = await openStreams(firstUrl, 8, 2000);
    await new Promise((resolve) => setTimeout(resolve, 300));
    first.child.kill('SIGKILL');
    expect(await exitWithin(first, 10_000)).toBe('SIGKILL');
    // The dead server's streams broke off: nothing came to tell them why, which is what the restart answers.
    expect((await Promise.all(streams)).every((end) => end.reset || !end.done)).toBe(true);

    const client = createRedis({ url: redis.url, connectionName: 'disagg-test-reconcile' });
    try {
      const records = async (): Promise<RequestRecord[]> => {
        const keys = await scanKeys(client, 'disagg:result:');
        const values = keys.length === 0 ? [] : await client.mget(...keys);
        return values.flatMap((v) => (v === null ? [] : [JSON.parse(v) as RequestRecord]));
      };
      const before = await records();
      expect(before).toHaveLength(8);
      expect(before.filter((r) => !TERMINAL_STATES.includes(r.state)).length).toBe(8);

      const second = serve(flags);
      await servedUrl(second);
      // The dead server's lease lapses within OWNER_LEASE_MS; the next sweep ends its requests.
      await expect
        .poll(async () => (await records()).filter((r) => !TERMINAL_STATES.includes(r.state)).length, {
          timeout: OWNER_LEASE_MS + RECONCILE_EVERY_MS + 5000,
          interval: 250,
        })
        .toBe(0);
      const after = await records();
      expect(after).toHaveLength(8);
      for (const r of after) {
        expect(r.state).toBe('failed');
        expect(r.error?.code).toBe(OWNER_LOST);
        expect(r.error?.message).toMatch(/send the request again/);
      }
      for (const key of await scanKeys(client, '')) expect(await client.pttl(key), key).toBeGreaterThan(0);
      expect(await terminate(second, 20_000)).toBe(0);
    } finally {
      client.disconnect();
    }
  }, 90_000);
});
