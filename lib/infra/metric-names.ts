/**
 * The custom metrics the handlers emit through Powertools Metrics and the dashboard reads. The handlers
 * must use the same namespace, service name, metric names and dimensions (Powertools' default `service`, plus
 * `clock` on latencies and `outcome` on request counts), or the dashboard's series stay empty (a metric is its name plus its dimension set).
 */
import { DEPLOYMENT_METRICS } from '../core/engine/deployment-env';

export const METRIC_NAMESPACE = DEPLOYMENT_METRICS.namespace;

/** POWERTOOLS_SERVICE_NAME on every function; Powertools adds it as the `service` dimension. */
export const METRIC_SERVICE = DEPLOYMENT_METRICS.service;

export const METRIC_NAMES = DEPLOYMENT_METRICS.names;
/** Latency metrics, each with a `clock` dimension: emulated or measured. */
export const LATENCY_METRIC_NAMES = DEPLOYMENT_METRICS.latency;
export const METRIC_DIMENSIONS = DEPLOYMENT_METRICS.dimensions;

export type MetricName =
  (typeof METRIC_NAMES)[keyof typeof METRIC_NAMES] | (typeof LATENCY_METRIC_NAMES)[keyof typeof LATENCY_METRIC_NAMES];
