/**
 * What the functions log and measure. Log lines carry ids, sizes and timings only: prompts and
 * completions never reach the logs.
 */
import { MetricUnit } from '@aws-lambda-powertools/metrics';
import type { RequestRecord } from '../lib/core/engine/record';
import type { LatencyKey } from '../lib/core/engine/metric-catalogue';
import { requestFigures } from '../lib/core/engine/request-figures';
import { LATENCY_METRIC, METRIC, METRIC_DIMENSION } from './metric-names';

/** The slice of the Powertools logger the handlers use (a test can pass a recorder). */
export interface LogSink {
  /** Below the function's default level: shown with POWERTOOLS_LOG_LEVEL=DEBUG. */
  debug?(message: string, attributes?: Record<string, unknown>): void;
  info(message: string, attributes?: Record<string, unknown>): void;
  warn(message: string, attributes?: Record<string, unknown>): void;
  error(message: string, attributes?: Record<string, unknown>): void;
}

type Unit = (typeof MetricUnit)[keyof typeof MetricUnit];

/** The slice of Powertools metrics the handlers use. */
export interface MetricsSink {
  addMetric(name: string, unit: Unit, value: number): void;
  /** A metric with dimensions of its own (Powertools publishes it at once, with the default `service`). */
  singleMetric(): {
    addDimensions(dimensions: Record<string, string>): void;
    addMetric(name: string, unit: Unit, value: number): void;
  };
  publishStoredMetrics(): void;
}

function dimensioned(
  metrics: MetricsSink,
  name: string,
  unit: Unit,
  value: number,
  dimensions: Record<string, string>,
): void {
  const single = metrics.singleMetric();
  single.addDimensions(dimensions);
  single.addMetric(name, unit, value);
}

/**
 * The metrics of a request that ended, under the embedded server's Prometheus names: its outcome, its tokens,
 * and for a completed one its latencies in seconds, emulated (modelled devices) and measured (this software),
 * each with a `clock` dimension. A rejected request is counted where it is rejected (addRejectionMetric).
 */
export function addRequestMetrics(metrics: MetricsSink, record: RequestRecord): void {
  if (record.state === 'rejected') return;
  dimensioned(metrics, METRIC.requests, MetricUnit.Count, 1, { [METRIC_DIMENSION.outcome]: record.state });
  metrics.addMetric(METRIC.promptTokens, MetricUnit.Count, record.promptTokens);
  metrics.addMetric(METRIC.generationTokens, MetricUnit.Count, record.completionTokens);
  if (record.state !== 'completed') return;
  const figures = requestFigures(record);
  for (const clock of ['emulated', 'measured'] as const) {
    const f = figures[clock];
    for (const key of Object.keys(LATENCY_METRIC) as LatencyKey[]) {
      const ms = f[`${key}Ms`];
      if (ms !== undefined && Number.isFinite(ms)) {
        dimensioned(metrics, LATENCY_METRIC[key], MetricUnit.Seconds, ms / 1000, { [METRIC_DIMENSION.clock]: clock });
      }
    }
  }
}

/** A request refused at admission (429), counted by the API function. */
export function addRejectionMetric(metrics: MetricsSink): void {
  dimensioned(metrics, METRIC.requests, MetricUnit.Count, 1, { [METRIC_DIMENSION.outcome]: 'rejected' });
}

/** KV bytes handed from prefill to decode (inline or through the KV store). */
export function addHandoffMetric(metrics: MetricsSink, bytes: number): void {
  metrics.addMetric(METRIC.kvHandoffBytes, MetricUnit.Bytes, bytes);
}

/** A request's outcome for a log line. */
export function requestLogFields(record: RequestRecord): Record<string, unknown> {
  return {
    requestId: record.id,
    state: record.state,
    mode: record.mode,
    attempt: record.attempt,
    promptTokens: record.promptTokens,
    completionTokens: record.completionTokens,
    emulatedTtftMs: record.emulated.ttftMs,
    emulatedTpotMs: record.emulated.tpotMs,
    measuredTotalMs: record.measured.totalMs,
    ...(record.error ? { errorCode: record.error.code } : {}),
  };
}

/** An error for a log line: its name and message (stages' messages carry ids, never prompt text). */
export function describeError(err: unknown): { name: string; message: string } {
  return err instanceof Error ? { name: err.name, message: err.message } : { name: 'unknown', message: String(err) };
}
