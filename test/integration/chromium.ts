/** Debian's Chromium for browser tests, driven by playwright-core, with a throwaway profile. */
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext } from 'playwright-core';

export const CHROMIUM = '/usr/bin/chromium';
const FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
];

export const chromiumAvailable = existsSync(CHROMIUM);

/** Chromium with a throwaway profile directory, removed by the caller. */
export async function launchChromium(): Promise<{ profile: string; context: BrowserContext }> {
  const profile = mkdtempSync(join(tmpdir(), 'disagg-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: FLAGS,
    viewport: { width: 1400, height: 1100 },
  });
  return { profile, context };
}
