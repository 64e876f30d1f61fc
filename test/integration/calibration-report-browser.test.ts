/**
 * `disagg calibrate --report` in a real browser (Debian's Chromium): the page draws its two charts from the
 * inlined data with no page error and no request leaving the file, and carries every published serving point.
 * `UPDATE_SCREENSHOT=1` writes docs/calibration.png for the README.
 */
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BrowserContext } from 'playwright-core';
import { calibrationPoints } from '../../lib/core/emulator/calibration';
import { writeCalibrationReport } from '../../bin/commands/calibration-report';
import { CHROMIUM, chromiumAvailable, launchChromium } from './chromium';

if (!chromiumAvailable) {
  process.stderr.write(
    `calibration report browser test not run: no ${CHROMIUM} (apt-get install chromium; .ci/run does)\n`,
  );
}

describe.runIf(chromiumAvailable)('the calibration report in Chromium', () => {
  let context: BrowserContext;
  let profile: string;

  beforeAll(async () => {
    ({ profile, context } = await launchChromium());
  }, 60_000);

  afterAll(async () => {
    await context?.close();
    if (profile) rmSync(profile, { recursive: true, force: true });
  });

  it(
    'draws the emulated-against-measured chart and the cross-validation from the file alone',
    { timeout: 60_000 },
    async () => {
      const file = join(profile, 'calibration.html');
      await writeCalibrationReport(file);
      const html = readFileSync(file, 'utf8');
      const inlined = JSON.parse(
        /<script type="application\/json" id="calibration-data">([\s\S]*?)<\/script>/.exec(html)![1]!,
      ) as { points: { id: string }[]; folds: unknown[] };
      const serving = calibrationPoints().filter((p) => p.kind === 'serving');
      expect(inlined.points.map((p) => p.id).sort()).toEqual(serving.map((p) => p.id).sort());
      expect(inlined.folds.length).toBeGreaterThan(20);
      expect(html).not.toContain(process.cwd());

      const page = await context.newPage();
      const errors: string[] = [];
      const outside: string[] = [];
      page.on('pageerror', (err) => errors.push(err.message));
      page.on('request', (req) => {
        if (!req.url().startsWith('file:')) outside.push(req.url());
      });
      await page.goto(pathToFileURL(file).href);
      // Chart.js registers each chart it drew on its canvas.
      const drawn = await page.evaluate(() =>
        ['parity', 'folds'].map((id) => {
          const chart = (
            globalThis as unknown as {
              Chart: { getChart(id: string): { data: { datasets: { data: unknown[] }[] } } | undefined };
            }
          ).Chart.getChart(id);
          return chart ? chart.data.datasets.reduce((n, d) => n + d.data.length, 0) : 0;
        }),
      );
      expect(drawn[0]).toBeGreaterThan(serving.length);
      expect(drawn[1]).toBe(inlined.folds.length);
      expect(errors).toEqual([]);
      expect(outside).toEqual([]);
      if (process.env.UPDATE_SCREENSHOT === '1')
        await page.screenshot({ path: 'docs/calibration.png', fullPage: true });
      await page.close();
    },
  );
});
