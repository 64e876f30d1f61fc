/**
 * The custom metrics the handlers emit through Powertools Metrics and the dashboard reads. The handlers
 * must use the same namespace, service name and metric names, and add no dimension besides Powertools'
 * default `service`, or the dashboard's series stay empty (a metric is its name plus its dimension set).
 */
import { DEPLOYMENT_METRICS } from '../core/engine/deployment-env';

export const METRIC_NAMESPACE = DEPLOYMENT_METRICS.namespace;

/** POWERTOOLS_SERVICE_NAME on every function; Powertools adds it as the `service` dimension. */
export const METRIC_SERVICE = DEPLOYMENT_METRICS.service;

export const METRIC_NAMES = DEPLOYMENT_METRICS.names;

export type MetricName = (typeof METRIC_NAMES)[keyof typeof METRIC_NAMES];
