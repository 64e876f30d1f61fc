/** CloudWatch metrics the functions emit (namespace and names); dashboards and alarms use the same. */
export const METRICS_NAMESPACE = 'Disagg';

export const METRIC = {
  /** Emulated time to first token: prefill + KV transfer + first decode step on the modelled devices. */
  emulatedTtftMs: 'EmulatedTtftMs',
  /** Emulated mean time per output token after the first. */
  emulatedTpotMs: 'EmulatedTpotMs',
  /** Measured wall time from the API receiving the request to its first token. */
  measuredTtftMs: 'MeasuredTtftMs',
  /** Measured wall time from the API receiving the request to its terminal state. */
  measuredTotalMs: 'MeasuredTotalMs',
} as const;
