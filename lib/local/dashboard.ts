/**
 * The live dashboard: one static page (lib/local/dashboard.html, Chart.js inlined, no network beyond this
 * server) at GET /dashboard, fed by GET /v1/dashboard/events, server-sent events behind the API key like every
 * /v1 route. The page reads the key from its URL's `#key=` fragment, which browsers never send to a server, so
 * the key reaches no log; it asks for one when it has none. `dashboardHtml({ mode: 'poll' })` is the static
 * build for a deployed API, which has no event stream: that page follows the requests it sends itself by
 * polling GET /v1/requests/{id}.
 */
import { readFileSync } from 'node:fs';
import type { Hono } from 'hono';
import { chartJsSource, scriptJson } from '../adapters/chart-js';
import type { ApiEnv } from '../core/api/app';
import { SSE_HEADERS } from '../core/api/sse';
import type { DashboardFeed, FeedEvent } from './dashboard-feed';

export const DASHBOARD_PATH = '/dashboard';
export const DASHBOARD_EVENTS_PATH = '/v1/dashboard/events';

/** What the page is told when it is built. */
export interface DashboardConfig {
  /** live: the embedded server's event stream; poll: a deployed API's request records. */
  readonly mode: 'live' | 'poll';
  readonly model?: string;
  /** One line on the page: the pools and time scale. */
  readonly setup?: string;
}

const TEMPLATE_URL = new URL('./dashboard.html', import.meta.url);
const CHART_SLOT = '/*__CHART_JS__*/';
const CONFIG_SLOT = "/*__CONFIG__*/ { mode: 'live' }";

/** The page, whole: open it from a file, serve it from anywhere. */
export function dashboardHtml(config: DashboardConfig): string {
  const template = readFileSync(TEMPLATE_URL, 'utf8');
  if (!template.includes(CHART_SLOT) || !template.includes(CONFIG_SLOT)) {
    throw new Error('dashboard.html lost its Chart.js or config slot');
  }
  // Functions as replacements: Chart.js's source holds `$&` and the like, which a string replacement would expand.
  return template.replace(CONFIG_SLOT, () => scriptJson(config)).replace(CHART_SLOT, () => chartJsSource());
}

/** Heartbeats keep proxies from closing an idle stream. */
const HEARTBEAT_MS = 15_000;

/** Adds GET /dashboard and GET /v1/dashboard/events to the application. */
export function dashboardRoutes(feed: DashboardFeed, config: DashboardConfig): (app: Hono<ApiEnv>) => void {
  let page: string | null = null;
  return (app) => {
    app.get(DASHBOARD_PATH, (c) => {
      page ??= dashboardHtml(config);
      return c.html(page, 200, {
        'cache-control': 'no-store',
        // The page needs nothing from elsewhere: scripts inline, requests to this origin only.
        'content-security-policy':
          "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; img-src data:",
        'referrer-policy': 'no-referrer',
      });
    });
    app.get(DASHBOARD_EVENTS_PATH, (c) => {
      const encoder = new TextEncoder();
      let unsubscribe: (() => void) | null = null;
      let heartbeat: ReturnType<typeof setInterval> | null = null;
      const stop = (): void => {
        unsubscribe?.();
        unsubscribe = null;
        if (heartbeat) clearInterval(heartbeat);
        heartbeat = null;
      };
      const body = new ReadableStream<Uint8Array>({
        start(controller) {
          const send = (text: string): void => {
            try {
              controller.enqueue(encoder.encode(text));
            } catch {
              stop();
            }
          };
          send(`event: hello\ndata: ${JSON.stringify({ model: config.model ?? null })}\n\n`);
          unsubscribe = feed.subscribe((event: FeedEvent) => send(`data: ${JSON.stringify(event)}\n\n`));
          heartbeat = setInterval(() => send(': heartbeat\n\n'), HEARTBEAT_MS);
          heartbeat.unref?.();
        },
        cancel: stop,
      });
      c.req.raw.signal.addEventListener('abort', stop, { once: true });
      return c.body(body, 200, { ...SSE_HEADERS });
    });
  };
}
