/**
 * The custom metrics the handlers emit through Powertools Metrics and the dashboard reads. The handlers
 * must use the same namespace, service name and metric names, and add no dimension besides Powertools'
 * default `service`, or the dashboard's series stay empty (a metric is its name plus its dimension set).
 */
export const METRIC_NAMESPACE = 'Disagg';

/** POWERTOOLS_SERVICE_NAME on every function; Powertools adds it as the `service` dimension. */
export const METRIC_SERVICE = 'disagg';

export const METRIC_NAMES = {
  /** Time to first token the emulated hardware would take (prefill + KV transfer + first decode step), ms. */
  emulatedTtftMs: 'EmulatedTtftMs',
  /** Time per output token the emulated hardware would take, ms. */
  emulatedTpotMs: 'EmulatedTpotMs',
  /** Wall time from request received to first token, as this software ran it, ms. */
  measuredTtftMs: 'MeasuredTtftMs',
  /** Wall time from request received to terminal state, ms. */
  measuredTotalMs: 'MeasuredTotalMs',
} as const;

export type MetricName = (typeof METRIC_NAMES)[keyof typeof METRIC_NAMES];
