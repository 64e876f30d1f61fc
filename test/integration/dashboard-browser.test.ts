/**
 * The live dashboard in a real browser: Debian's Chromium driven by playwright-core. The page loads from the
 * banner's URL (key in the `#key=` fragment), its "load" button sends a burst, a request shows moving through
 * queue, prefill, transfer and decode within seconds, and the TTFT and TPOT charts gain points; without a key
 * the page asks for one. `UPDATE_SCREENSHOT=1` writes docs/dashboard.png for the README.
 *
 * The static build (`disagg dashboard --out`) the same way against an API on another origin, as a deployed API
 * is: the page served from one port, the API on another with CORS allowing the page's origin only, the key
 * typed into the page's prompt. It follows the requests it sends by polling GET /v1/requests/{id}.
 */
import { rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import type { BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dashboardHtml } from '../../lib/local/dashboard';
import { startServer, type RunningServer } from '../../lib/local/server';
import { CHROMIUM, chromiumAvailable, launchChromium } from './chromium';

const available = chromiumAvailable;

if (!available) {
  process.stderr.write(`dashboard browser test not run: no ${CHROMIUM} (apt-get install chromium; .ci/run does)\n`);
}

describe.runIf(available)('the live dashboard in Chromium', () => {
  let server: RunningServer;
  let context: BrowserContext;
  let profile: string;

  beforeAll(async () => {
    // Real time, so each stage lasts long enough to be seen; a short decode batch limit shows batching.
    server = await startServer({ port: 0, engine: { timeScale: 1 }, apiKey: 'sk-dashboard-test' });
    ({ profile, context } = await launchChromium());
  }, 60_000);

  afterAll(async () => {
    await context?.close();
    await server?.close();
    if (profile) rmSync(profile, { recursive: true, force: true });
  });

  async function open(url: string): Promise<Page> {
    const page = await context.newPage();
    const errors: string[] = [];
    page.on('pageerror', (err) => errors.push(err.message));
    await page.goto(url);
    expect(errors).toEqual([]);
    return page;
  }

  it('asks for the key when the URL carries none, and connects once given it', { timeout: 30_000 }, async () => {
    const page = await open(`${server.url}/dashboard`);
    await page.locator('#ask').waitFor({ state: 'visible', timeout: 10_000 });
    await page.fill('#key', 'sk-dashboard-test');
    await page.click('#ask button');
    await expect.poll(() => page.textContent('#status'), { timeout: 10_000 }).toBe('live');
    await page.close();
  });

  it(
    'shows a burst moving through the stages and the charts filling, from the banner URL',
    { timeout: 60_000 },
    async () => {
      expect(server.dashboardUrl).toBe(`${server.url}/dashboard#key=sk-dashboard-test`);
      const page = await open(server.dashboardUrl);
      await expect.poll(() => page.textContent('#status'), { timeout: 10_000 }).toBe('live');
      const sentAt = Date.now();
      await page.click('#load');
      // Within a few seconds a row is in the pipeline, and later one has every stage drawn.
      await page.locator('.gantt-row').first().waitFor({ timeout: 5000 });
      const complete = page.locator(
        '.gantt-row[data-state="completed"]:has(.seg-queue):has(.seg-prefill):has(.seg-transfer):has(.seg-decode)',
      );
      await complete.first().waitFor({ timeout: 20_000 });
      expect(Date.now() - sentAt).toBeLessThan(20_000);
      await expect
        .poll(
          () =>
            page.evaluate(
              () => (globalThis as unknown as DashboardWindow).disaggDashboard.charts.ttft.data.labels.length,
            ),
          {
            timeout: 20_000,
          },
        )
        .toBe(8);
      const points = await page.evaluate(() => {
        const charts = (globalThis as unknown as DashboardWindow).disaggDashboard.charts;
        return {
          ttft: charts.ttft.data.datasets.map((d) => d.data.filter((v) => v !== null).length),
          tpot: charts.tpot.data.datasets.map((d) => d.data.length),
        };
      });
      // Emulated and measured side by side, a point each per completed request.
      expect(points.ttft).toEqual([8, 8]);
      expect(points.tpot).toEqual([8, 8]);
      // The tiles are redrawn four times a second.
      await expect.poll(async () => Number(await page.textContent('#t-done')), { timeout: 5000 }).toBe(8);
      // Give the occupancy chart a sample after the burst, then picture it for the README.
      await page.waitForTimeout(800);
      if (process.env.UPDATE_SCREENSHOT === '1') await page.screenshot({ path: 'docs/dashboard.png', fullPage: true });
      else await page.screenshot({ path: join(profile, 'dashboard.png'), fullPage: true });
      await page.close();
    },
  );
});

describe.runIf(available)('the static dashboard build in Chromium, against an API on another origin', () => {
  const KEY = 'sk-static-dashboard-test';
  let api: RunningServer;
  let pages: Server;
  let pageOrigin: string;
  let context: BrowserContext;
  let profile: string;

  beforeAll(async () => {
    // The page's own origin: a plain file server on one port, serving what `disagg dashboard --out` writes.
    const html = dashboardHtml({ mode: 'poll' });
    pages = createServer((req, res) => {
      if (req.url === '/dashboard.html') res.writeHead(200, { 'content-type': 'text/html' }).end(html);
      else res.writeHead(404).end();
    });
    await new Promise<void>((resolve) => pages.listen(0, '127.0.0.1', resolve));
    pageOrigin = `http://127.0.0.1:${(pages.address() as AddressInfo).port}`;
    api = await startServer({ port: 0, engine: { timeScale: 1 }, apiKey: KEY, corsOrigins: [pageOrigin] });
    ({ profile, context } = await launchChromium());
  }, 60_000);

  afterAll(async () => {
    await context?.close();
    await api?.close();
    await new Promise<void>((resolve) => (pages ? pages.close(() => resolve()) : resolve()));
    if (profile) rmSync(profile, { recursive: true, force: true });
  });

  it(
    'asks for the key, sends a burst across origins and follows it through the stages to the charts',
    { timeout: 60_000 },
    async () => {
      expect(new URL(api.url).origin).not.toBe(pageOrigin);
      const page = await context.newPage();
      const errors: string[] = [];
      page.on('pageerror', (err) => errors.push(err.message));
      const failedRequests: string[] = [];
      page.on('requestfailed', (r) => failedRequests.push(`${r.method()} ${r.url()}: ${r.failure()?.errorText}`));
      await page.goto(`${pageOrigin}/dashboard.html#api=${encodeURIComponent(api.url)}`);
      expect(errors).toEqual([]);
      // No key in the URL: the page asks for one, and the API base is the one the fragment named.
      await page.locator('#ask').waitFor({ state: 'visible', timeout: 10_000 });
      expect(await page.inputValue('#api')).toBe(api.url);
      await page.fill('#key', KEY);
      await page.click('#ask button');
      await page.click('#load');
      const complete = page.locator(
        '.gantt-row[data-state="completed"]:has(.seg-queue):has(.seg-prefill):has(.seg-decode)',
      );
      await complete.first().waitFor({ timeout: 30_000 });
      await expect.poll(async () => Number(await page.textContent('#t-done')), { timeout: 30_000 }).toBe(8);
      const points = await page.evaluate(() => {
        const charts = (globalThis as unknown as DashboardWindow).disaggDashboard.charts;
        return charts.ttft.data.datasets.map((d) => d.data.filter((v) => v !== null).length);
      });
      // Emulated and measured TTFT, a point each per completed request, read from the request records.
      expect(points).toEqual([8, 8]);
      expect(Number(await page.textContent('#t-failed'))).toBe(0);
      expect(failedRequests).toEqual([]);
      expect(errors).toEqual([]);
      await page.close();
    },
  );

  it('is refused by the browser from an origin the API does not allow', { timeout: 30_000 }, async () => {
    const page = await context.newPage();
    // The page's origin is allowed by one API and not by another: the browser lets only the first answer through.
    await page.goto(`${pageOrigin}/dashboard.html`);
    const allowed = await page.evaluate(
      async ([url, key]) => (await fetch(`${url}/v1/models`, { headers: { authorization: `Bearer ${key}` } })).status,
      [api.url, KEY] as const,
    );
    expect(allowed).toBe(200);
    const other = await startServer({
      port: 0,
      engine: { timeScale: 0 },
      apiKey: KEY,
      corsOrigins: ['http://elsewhere.example'],
    });
    try {
      const refused = await page.evaluate(
        async ([url, key]) =>
          fetch(`${url}/v1/models`, { headers: { authorization: `Bearer ${key}` } }).then(
            (r) => `status ${r.status}`,
            (e: Error) => `blocked: ${e.name}`,
          ),
        [other.url, KEY] as const,
      );
      expect(refused).toBe('blocked: TypeError');
    } finally {
      await other.close();
      await page.close();
    }
  });
});

interface DashboardWindow {
  disaggDashboard: {
    charts: Record<'ttft' | 'tpot' | 'e2e', { data: { labels: string[]; datasets: { data: (number | null)[] }[] } }>;
  };
}
