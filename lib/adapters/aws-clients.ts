/**
 * SDK client configuration from the environment, shared by every AWS adapter.
 * Callers build each client once per process (module scope), so Lambda reuses connections across invocations.
 */

export interface AwsClientConfig {
  readonly region: string;
  /** Set only when overridden (LocalStack); otherwise the SDK resolves the regional endpoint. */
  readonly endpoint?: string;
}

export interface S3ClientConfigFromEnv extends AwsClientConfig {
  readonly forcePathStyle?: boolean;
}

type Env = Readonly<Record<string, string | undefined>>;

const DEFAULT_REGION = 'us-east-1';

/** Region and optional endpoint override (`AWS_ENDPOINT_URL`, the standard SDK variable) for any client. */
export function awsClientConfig(env: Env = process.env): AwsClientConfig {
  const region = nonEmpty(env.AWS_REGION) ?? nonEmpty(env.AWS_DEFAULT_REGION) ?? DEFAULT_REGION;
  const endpoint = nonEmpty(env.AWS_ENDPOINT_URL);
  return endpoint === undefined ? { region } : { region, endpoint };
}

/** As {@link awsClientConfig}, plus path-style addressing when an endpoint is set. */
export function s3ClientConfig(env: Env = process.env): S3ClientConfigFromEnv {
  const base = awsClientConfig(env);
  // LocalStack (and most S3 emulators) cannot resolve virtual-hosted bucket subdomains.
  return base.endpoint === undefined ? base : { ...base, forcePathStyle: true };
}

function nonEmpty(value: string | undefined): string | undefined {
  const trimmed = value?.trim();
  return trimmed ? trimmed : undefined;
}
