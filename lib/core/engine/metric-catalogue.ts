/**
 * The metrics this project emits, named once: the embedded server's Prometheus `/metrics` (lib/local/metrics.ts)
 * and the Lambda functions' CloudWatch metrics (lambdas/observability.ts, read by lib/infra/observability.ts) use
 * these names. Where a metric means what one of vLLM's means, it has vLLM's name (`vllm:`), so dashboards built
 * for vLLM find it; the rest are `disagg:`. Latencies are in seconds, as vLLM's, and labelled with the clock they
 * were read on: `emulated` (device time the timing model charged) or `measured` (wall time this software took).
 */

/** Latency histograms, one series per clock. */
export const LATENCY_METRICS = {
  ttft: {
    name: 'vllm:time_to_first_token_seconds',
    help: 'Time to first token: received to the first output token.',
  },
  tpot: {
    name: 'vllm:request_time_per_output_token_seconds',
    help: 'Mean time per output token after the first, per request.',
  },
  e2e: { name: 'vllm:e2e_request_latency_seconds', help: 'End-to-end request latency: received to the last token.' },
  queue: {
    name: 'vllm:request_queue_time_seconds',
    help: 'Time waiting for a prefill replica (emulated: the device time of the prefills that ran meanwhile).',
  },
  prefill: { name: 'vllm:request_prefill_time_seconds', help: 'Prefill time.' },
  decode: { name: 'vllm:request_decode_time_seconds', help: 'Decode time: decode start to the last token.' },
  transfer: {
    name: 'disagg:kv_transfer_time_seconds',
    help: 'KV handoff: the emulated link time; measured, prefill end to the KV loaded by decode.',
  },
} as const;

export type LatencyKey = keyof typeof LATENCY_METRICS;

/** The label that says which clock a latency was read on. */
export const CLOCK_LABEL = 'clock';
export type MetricClock = 'emulated' | 'measured';

export const METRIC = {
  /** Requests by route, mode and outcome; reason: finish reason, error code, or the full queue. */
  requests: 'disagg:requests_total',
  /** vLLM's count of finished requests by finish reason (stop, length). */
  requestSuccess: 'vllm:request_success_total',
  promptTokens: 'vllm:prompt_tokens_total',
  generationTokens: 'vllm:generation_tokens_total',
  httpResponses: 'disagg:http_responses_total',
  /** vLLM's: requests in a running batch (prefill or decode). */
  running: 'vllm:num_requests_running',
  /** vLLM's: requests waiting for a stage. */
  waiting: 'vllm:num_requests_waiting',
  queueDepth: 'disagg:queue_depth',
  decodeBatch: 'disagg:decode_batch_size',
  poolBusyRatio: 'disagg:pool_busy_ratio',
  poolBusySeconds: 'disagg:pool_busy_seconds_total',
  kvHandoffBytes: 'disagg:kv_handoff_bytes_total',
  kvHandoffBlobs: 'disagg:kv_handoff_blobs_total',
  kvBlobsHeld: 'disagg:kv_blobs_held',
  kvBytesHeld: 'disagg:kv_bytes_held',
} as const;

/** Outcomes of `disagg:requests_total`. */
export type RequestOutcome = 'completed' | 'failed' | 'cancelled' | 'rejected';
