/** CloudWatch metrics the functions emit; the names are the stack's contract (DEPLOYMENT_METRICS). */
import { DEPLOYMENT_METRICS } from '../lib/core/engine/deployment-env';

export const METRICS_NAMESPACE = DEPLOYMENT_METRICS.namespace;
export const METRIC = DEPLOYMENT_METRICS.names;
export const LATENCY_METRIC = DEPLOYMENT_METRICS.latency;
export const METRIC_DIMENSION = DEPLOYMENT_METRICS.dimensions;
