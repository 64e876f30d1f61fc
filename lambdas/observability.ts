/**
 * What the functions log and measure. Log lines carry ids, sizes and timings only: prompts and
 * completions never reach the logs.
 */
import { MetricUnit } from '@aws-lambda-powertools/metrics';
import type { RequestRecord } from '../lib/core/engine/record';
import { METRIC } from './metric-names';

/** The slice of the Powertools logger the handlers use (a test can pass a recorder). */
export interface LogSink {
  /** Below the function's default level: shown with POWERTOOLS_LOG_LEVEL=DEBUG. */
  debug?(message: string, attributes?: Record<string, unknown>): void;
  info(message: string, attributes?: Record<string, unknown>): void;
  warn(message: string, attributes?: Record<string, unknown>): void;
  error(message: string, attributes?: Record<string, unknown>): void;
}

/** The slice of Powertools metrics the handlers use. */
export interface MetricsSink {
  addMetric(name: string, unit: typeof MetricUnit.Milliseconds, value: number): void;
  publishStoredMetrics(): void;
}

/** Latency metrics of a completed request: emulated (modelled devices) and measured (this software). */
export function addRequestMetrics(metrics: MetricsSink, record: RequestRecord): void {
  if (record.state !== 'completed') return;
  const ms = MetricUnit.Milliseconds;
  metrics.addMetric(METRIC.emulatedTtftMs, ms, record.emulated.ttftMs);
  if (record.completionTokens > 1) metrics.addMetric(METRIC.emulatedTpotMs, ms, record.emulated.tpotMs);
  const firstToken = record.timeline.find((t) => t.event === 'first_token');
  if (firstToken) metrics.addMetric(METRIC.measuredTtftMs, ms, firstToken.measuredMs);
  metrics.addMetric(METRIC.measuredTotalMs, ms, record.measured.totalMs);
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
