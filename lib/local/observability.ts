/**
 * Everything `disagg serve` reports about the requests it serves, wired to the pipeline's event bus once:
 * Prometheus metrics (GET /metrics), a JSON log line per request, a root span per request, and the live
 * dashboard's feed (GET /dashboard). The bus hears the stages in this thread and, under `--workers`, the
 * events the stage threads relay here, so one process-wide view covers every thread.
 */
import type { Hono } from 'hono';
import type { Logger } from 'pino';
import type { MemoryEventBus } from '../adapters/events-memory';
import type { Tracing } from '../adapters/telemetry';
import type { ApiEnv, ApiLog, ApiObserver } from '../core/api/app';
import type { RequestEvent } from '../core/engine/record';
import { DashboardFeed } from './dashboard-feed';
import { dashboardRoutes } from './dashboard';
import { ServeMetrics } from './metrics';
import { RequestLog, apiLog } from './request-log';
import { RequestSpans } from './request-spans';
import type { PipelineRuntime } from './runtime';

export const METRICS_PATH = '/metrics';

export interface ServeObservabilityOptions {
  readonly runtime: PipelineRuntime;
  readonly events: MemoryEventBus<RequestEvent>;
  readonly prefillReplicas: number;
  /** Null: no request log (programmatic servers that did not ask for one). */
  readonly logger: Logger | null;
  readonly tracing: Tracing;
  /** One line the dashboard shows: pools and time scale. */
  readonly setup: string;
}

export class ServeObservability {
  readonly metrics: ServeMetrics;
  readonly feed: DashboardFeed;
  readonly spans: RequestSpans;
  readonly requestLog: RequestLog | null;
  readonly log: ApiLog | null;
  readonly observer: ApiObserver;
  readonly extraRoutes: (app: Hono<ApiEnv>) => void;
  private readonly unwatch: () => void;

  constructor(private readonly options: ServeObservabilityOptions) {
    const { runtime, events } = options;
    const model = runtime.config.model.id;
    this.metrics = new ServeMetrics({
      model,
      prefillReplicas: options.prefillReplicas,
      occupancy: () => runtime.occupancy(),
    });
    this.feed = new DashboardFeed(() => ({ ...runtime.occupancy(), kvBlobsHeld: this.metrics.kvBlobsHeld }));
    this.spans = new RequestSpans(options.tracing);
    this.requestLog = options.logger ? new RequestLog(options.logger) : null;
    this.log = options.logger ? apiLog(options.logger) : null;
    this.unwatch = events.watchAll((id, event) => {
      this.metrics.observe(id, event);
      this.requestLog?.observe(id, event);
      this.spans.observe(id, event);
      this.feed.observe(id, event);
    });
    this.observer = {
      accepted: (seen) => {
        this.metrics.accepted(seen);
        this.requestLog?.accepted(seen);
      },
      rejected: (seen) => {
        this.metrics.rejected(seen);
        this.requestLog?.rejected(seen);
      },
      responded: (response) => {
        this.metrics.responded(response);
        options.logger?.debug({ ...response }, 'response');
      },
    };
    const dashboard = dashboardRoutes(this.feed, { mode: 'live', model, setup: options.setup });
    this.extraRoutes = (app) => {
      // Unauthenticated, as vLLM's /metrics and this server's /healthz: counts and timings, no request content.
      app.get(METRICS_PATH, async (c) =>
        c.body(await this.metrics.text(), 200, { 'content-type': this.metrics.contentType }),
      );
      dashboard(app);
    };
  }

  async close(): Promise<void> {
    this.unwatch();
    this.feed.close();
    await this.options.tracing.shutdown().catch(() => undefined);
    this.options.logger?.flush();
  }
}
