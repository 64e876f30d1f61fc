/**
 * What Lambda does around the functions of a synthesized stack, read from its template:
 *   - execution environments (lambda-environment.mjs child processes), reused while warm, one invocation at a
 *     time each, ended when an invocation outlives the function's Timeout;
 *   - the Invoke API on a local port, for the API function's asynchronous prefill invoke;
 *   - asynchronous invocation per AWS::Lambda::EventInvokeConfig: MaximumRetryAttempts retries after a
 *     function error or timeout, MaximumEventAgeInSeconds, then the OnFailure destination (a function or a
 *     queue) with Lambda's destination record;
 *   - the SQS event source per AWS::Lambda::EventSourceMapping: BatchSize, MaximumBatchingWindowInSeconds,
 *     ReportBatchItemFailures (only the reported messages stay; the rest are deleted), a whole batch left to its
 *     visibility timeout when the invocation fails; the queue's redrive moves a message after maxReceiveCount.
 * One stretch of Lambda's timing is compressed and stated: the waits between asynchronous retries (about 1 and
 * 2 minutes in AWS) are `retryDelaysMs`. Each function reaches DynamoDB through a proxy of its own, so a test can
 * fail or delay one function's calls at the protocol level without touching its code.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import {
  createServer,
  request as httpRequest,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http';
import { tmpdir } from 'node:os';
import { fileURLToPath } from 'node:url';
import {
  ChangeMessageVisibilityCommand,
  DeleteMessageCommand,
  GetQueueAttributesCommand,
  ReceiveMessageCommand,
  SendMessageCommand,
  SQSClient,
  type Message,
} from '@aws-sdk/client-sqs';
import {
  ACCOUNT,
  EMULATOR_CREDENTIALS,
  REGION,
  type CfnTemplate,
  type FunctionDefinition,
  type Provisioned,
  type Synthesized,
} from './deployment';
import type { AwsServers } from './servers';

const HARNESS = fileURLToPath(new URL('./lambda-environment.mjs', import.meta.url));

export type CodeSource = 'bundle' | 'source';

export interface InvokeResult {
  readonly payload?: unknown;
  /** Set when the function failed: threw, or timed out (`Sandbox.Timedout`). */
  readonly error?: { readonly errorType: string; readonly errorMessage: string };
  /** A streamed response: its prelude and the chunks, each with the time it arrived. */
  readonly stream?: {
    readonly statusCode: number;
    readonly headers: Record<string, string>;
    readonly chunks: { readonly data: string; readonly at: number }[];
  };
}

/** Attempts the DynamoDB client makes of one call by default (its maxAttempts): failing that many fails the call. */
export const DYNAMODB_SDK_ATTEMPTS = 4;

/** A DynamoDB call of one function to fail or delay: `times` calls whose operation matches. */
export interface DynamoFault {
  readonly operation: string;
  times: number;
  readonly kind: 'error' | 'delay';
  readonly delayMs?: number;
}

interface PendingInvocation {
  readonly resolve: (result: InvokeResult) => void;
  stream?: { statusCode: number; headers: Record<string, string>; chunks: { data: string; at: number }[] };
  ended?: boolean;
  done?: { error?: InvokeResult['error'] };
}

class ExecutionEnvironment {
  readonly child: ChildProcess;
  readonly ready: Promise<void>;
  busy = false;
  private readonly pending = new Map<string, PendingInvocation>();

  constructor(fn: FunctionDefinition, env: Record<string, string>, source: CodeSource, logs: string[]) {
    const code = source === 'bundle' ? fn.bundle : fn.source;
    if (!code) throw new Error(`${fn.logicalId} has no bundle: synthesize with bundling to run bundles`);
    this.child = fork(HARNESS, [], {
      env: {
        ...env,
        DISAGG_TIER_CODE: code,
        DISAGG_TIER_HANDLER: fn.exportName,
        DISAGG_TIER_TIMEOUT_MS: String(fn.timeoutSeconds * 1000),
      },
      // The bundle runs on plain node, as in Lambda; the TypeScript source needs tsx.
      execArgv: source === 'source' ? ['--import', 'tsx'] : [],
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
    });
    for (const stream of [this.child.stdout, this.child.stderr]) {
      stream?.setEncoding('utf8');
      stream?.on('data', (text: string) => logs.push(...text.split('\n').filter((l) => l.trim() !== '')));
    }
    this.ready = new Promise((resolve, reject) => {
      this.child.once('message', () => resolve());
      this.child.once('exit', (code) => reject(new Error(`${fn.logicalId} environment exited with ${code}`)));
    });
    this.child.on('message', (message: { type: string; id: string } & Record<string, unknown>) =>
      this.onMessage(message),
    );
    this.child.on('exit', () => {
      for (const [id, p] of this.pending) {
        this.pending.delete(id);
        p.resolve({ error: { errorType: 'Runtime.ExitError', errorMessage: 'the execution environment exited' } });
      }
    });
  }

  invoke(event: unknown): Promise<InvokeResult> {
    const id = randomUUID();
    return new Promise((resolve) => {
      this.pending.set(id, { resolve });
      this.child.send({ type: 'invoke', id, event });
    });
  }

  kill(): void {
    this.child.kill('SIGKILL');
  }

  private onMessage(message: { type: string; id: string } & Record<string, unknown>): void {
    const p = this.pending.get(message.id);
    if (!p) return;
    switch (message.type) {
      case 'result':
        this.pending.delete(message.id);
        p.resolve(message.error ? { error: message.error as InvokeResult['error'] } : { payload: message.payload });
        return;
      case 'head':
        p.stream = {
          statusCode: Number(message.statusCode),
          headers: message.headers as Record<string, string>,
          chunks: [],
        };
        return;
      case 'chunk':
        p.stream?.chunks.push({ data: String(message.data), at: Number(message.at) });
        return;
      case 'end':
        p.ended = true;
        break;
      case 'done':
        p.done = message.error ? { error: message.error as InvokeResult['error'] } : {};
        break;
    }
    if (p.ended && p.done && p.stream) {
      this.pending.delete(message.id);
      p.resolve({ stream: p.stream, ...(p.done.error ? { error: p.done.error } : {}) });
    }
  }
}

/** One function: its warm environments, its DynamoDB proxy and faults, its log lines. */
class FunctionRuntime {
  private readonly environments: ExecutionEnvironment[] = [];
  readonly logs: string[] = [];
  invocations = 0;
  coldStarts = 0;

  constructor(
    readonly definition: FunctionDefinition,
    private readonly env: Record<string, string>,
    private readonly source: CodeSource,
    /** Faults its DynamoDB proxy applies; a test pushes to it. */
    readonly faults: DynamoFault[],
  ) {}

  async invoke(event: unknown): Promise<InvokeResult> {
    this.invocations += 1;
    let environment = this.environments.find((e) => !e.busy);
    if (!environment) {
      environment = new ExecutionEnvironment(this.definition, this.env, this.source, this.logs);
      this.environments.push(environment);
      this.coldStarts += 1;
    }
    environment.busy = true;
    const timeoutMs = this.definition.timeoutSeconds * 1000;
    let timer: NodeJS.Timeout | undefined;
    try {
      await environment.ready;
      const timedOut = new Promise<InvokeResult>((resolve) => {
        timer = setTimeout(
          () =>
            resolve({
              error: {
                errorType: 'Sandbox.Timedout',
                errorMessage: `Task timed out after ${this.definition.timeoutSeconds.toFixed(2)} seconds`,
              },
            }),
          timeoutMs,
        );
      });
      const result = await Promise.race([environment.invoke(event), timedOut]);
      if (result.error?.errorType === 'Sandbox.Timedout') this.retire(environment);
      return result;
    } catch (err) {
      this.retire(environment);
      return { error: { errorType: 'Runtime.InitError', errorMessage: (err as Error).message } };
    } finally {
      clearTimeout(timer);
      environment.busy = false;
    }
  }

  private retire(environment: ExecutionEnvironment): void {
    environment.kill();
    this.environments.splice(this.environments.indexOf(environment), 1);
  }

  stop(): void {
    for (const e of this.environments.splice(0)) e.kill();
  }
}

export interface LambdaServiceOptions {
  readonly source: CodeSource;
  /** Waits before asynchronous retries 1 and 2 (AWS: about 1 and 2 minutes). */
  readonly retryDelaysMs?: readonly [number, number];
}

export class LambdaService {
  readonly functions = new Map<string, FunctionRuntime>();
  private readonly servers: Server[] = [];
  private readonly sqs: SQSClient;
  private running = true;
  private readonly pollers: Promise<void>[] = [];
  private inFlight = 0;
  private readonly retryDelaysMs: readonly [number, number];
  /** Destination records Lambda sent, by destination: what a test can check of the asynchronous path. */
  readonly destinations: { functionId: string; condition: string; target: string }[] = [];

  private constructor(
    private readonly synthesized: Synthesized,
    private readonly provisioned: Provisioned,
    private readonly awsServers: AwsServers,
    options: LambdaServiceOptions,
  ) {
    this.sqs = new SQSClient({ region: REGION, endpoint: awsServers.sqsS3Endpoint, credentials: EMULATOR_CREDENTIALS });
    this.retryDelaysMs = options.retryDelaysMs ?? [1000, 2000];
  }

  static async start(
    synthesized: Synthesized,
    provisioned: Provisioned,
    servers: AwsServers,
    options: LambdaServiceOptions,
  ): Promise<LambdaService> {
    const service = new LambdaService(synthesized, provisioned, servers, options);
    const invokeEndpoint = await service.listen((req, res) => service.serveInvokeApi(req, res));
    for (const fn of synthesized.functions.values()) {
      const faults: DynamoFault[] = [];
      const dynamoProxy = await service.listen((req, res) => service.proxyDynamo(faults, req, res));
      const env: Record<string, string> = {
        PATH: process.env.PATH ?? '',
        // lambda-local reads ~/.aws; an empty home keeps a developer's real credentials out of the functions.
        HOME: tmpdir(),
        AWS_REGION: REGION,
        AWS_DEFAULT_REGION: REGION,
        AWS_ACCESS_KEY_ID: EMULATOR_CREDENTIALS.accessKeyId,
        AWS_SECRET_ACCESS_KEY: EMULATOR_CREDENTIALS.secretAccessKey,
        AWS_LAMBDA_FUNCTION_NAME: fn.logicalId,
        AWS_LAMBDA_FUNCTION_MEMORY_SIZE: String(fn.memoryMb),
        // Per-service endpoints: SQS and S3 on fauxqs, DynamoDB through this function's proxy, Lambda here.
        AWS_ENDPOINT_URL_SQS: servers.sqsS3Endpoint,
        AWS_ENDPOINT_URL_S3: servers.sqsS3Endpoint,
        AWS_ENDPOINT_URL_DYNAMODB: dynamoProxy,
        AWS_ENDPOINT_URL_LAMBDA: invokeEndpoint,
        // The TLS Redis's certificate authority, as ElastiCache's is trusted by Lambda's runtime.
        NODE_EXTRA_CA_CERTS: servers.caFile,
        // No X-Ray daemon runs here; tracing is the one Lambda service this tier does not stand in for.
        POWERTOOLS_TRACE_ENABLED: 'false',
        AWS_XRAY_CONTEXT_MISSING: 'IGNORE_ERROR',
      };
      for (const [key, value] of Object.entries(fn.environment)) env[key] = provisioned.resolve(value);
      service.functions.set(fn.logicalId, new FunctionRuntime(fn, env, options.source, faults));
    }
    for (const [, mapping] of service.resources('AWS::Lambda::EventSourceMapping')) {
      service.pollers.push(service.pollQueue(mapping.Properties as Record<string, unknown>));
    }
    return service;
  }

  /** The function whose description starts with this text. */
  fn(descriptionStart: string): FunctionRuntime {
    const found = [...this.functions.values()].filter((f) => f.definition.description.startsWith(descriptionStart));
    if (found.length !== 1) throw new Error(`expected one function "${descriptionStart}", found ${found.length}`);
    return found[0]!;
  }

  /** A synchronous invocation (RequestResponse). */
  invoke(functionId: string, event: unknown): Promise<InvokeResult> {
    const runtime = this.functions.get(functionId);
    if (!runtime) throw new Error(`no function ${functionId}`);
    this.inFlight += 1;
    return runtime.invoke(event).finally(() => (this.inFlight -= 1));
  }

  /** An asynchronous invocation (Event): retried and sent to its destination as the function's EventInvokeConfig says. */
  invokeAsync(functionId: string, payload: unknown): void {
    const config = this.invokeConfigOf(functionId);
    const receivedAt = Date.now();
    this.inFlight += 1;
    const attempt = async (attempts: number): Promise<void> => {
      if (Date.now() - receivedAt > config.maxEventAgeMs)
        return this.fail(functionId, payload, 'EventAgeExceeded', attempts, null);
      const result = await this.invoke(functionId, payload);
      if (!result.error) return;
      if (attempts <= config.retries) {
        await new Promise((resolve) => setTimeout(resolve, this.retryDelaysMs[attempts - 1] ?? this.retryDelaysMs[1]));
        return attempt(attempts + 1);
      }
      return this.fail(functionId, payload, 'RetriesExhausted', attempts, result.error);
    };
    void attempt(1)
      .catch((err: unknown) => console.error(`async invocation of ${functionId} failed in the emulator`, err))
      .finally(() => (this.inFlight -= 1));
  }

  /** Resolves when no invocation runs and the queues the event sources read are empty (or `timeoutMs` passes). */
  async settled(timeoutMs = 60_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let quietSince = 0;
    while (Date.now() < deadline) {
      const quiet = this.inFlight === 0 && (await this.sourceQueuesEmpty());
      if (quiet && quietSince === 0) quietSince = Date.now();
      if (!quiet) quietSince = 0;
      // Quiet for a poll interval: nothing was between a receive and its invocation.
      if (quietSince !== 0 && Date.now() - quietSince > 1500) return;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    throw new Error(`the emulated functions were still busy after ${timeoutMs} ms`);
  }

  async stop(): Promise<void> {
    this.running = false;
    await Promise.all(this.pollers);
    for (const runtime of this.functions.values()) runtime.stop();
    await Promise.all(this.servers.map((s) => new Promise((resolve) => s.close(resolve))));
    this.sqs.destroy();
  }

  private resources(type: string): [string, CfnTemplate['Resources'][string]][] {
    return Object.entries(this.synthesized.template.Resources).filter(([, r]) => r.Type === type);
  }

  private invokeConfigOf(functionId: string): { retries: number; maxEventAgeMs: number; onFailure: string | null } {
    const found = this.resources('AWS::Lambda::EventInvokeConfig').find(
      ([, r]) => (r.Properties?.FunctionName as { Ref?: string } | undefined)?.Ref === functionId,
    );
    // Lambda's defaults: two retries, six hours.
    if (!found) return { retries: 2, maxEventAgeMs: 6 * 3600_000, onFailure: null };
    const p = found[1].Properties as Record<string, unknown>;
    const destination = (p.DestinationConfig as { OnFailure?: { Destination?: unknown } } | undefined)?.OnFailure
      ?.Destination;
    return {
      retries: Number(p.MaximumRetryAttempts ?? 2),
      maxEventAgeMs: Number(p.MaximumEventAgeInSeconds ?? 21_600) * 1000,
      onFailure: destination === undefined ? null : this.provisioned.resolve(destination as never),
    };
  }

  /** Lambda's destination record for a failed asynchronous invocation, sent where OnFailure says. */
  private async fail(
    functionId: string,
    payload: unknown,
    condition: 'RetriesExhausted' | 'EventAgeExceeded',
    attempts: number,
    error: InvokeResult['error'] | null,
  ): Promise<void> {
    const { onFailure } = this.invokeConfigOf(functionId);
    if (!onFailure) return;
    const record = {
      version: '1.0',
      timestamp: new Date().toISOString(),
      requestContext: {
        requestId: randomUUID(),
        functionArn: `arn:aws:lambda:${REGION}:${ACCOUNT}:function:${functionId}:$LATEST`,
        condition,
        approximateInvokeCount: attempts,
      },
      requestPayload: payload,
      responseContext: { statusCode: 200, executedVersion: '$LATEST', functionError: 'Unhandled' },
      responsePayload: error,
    };
    const targetFunction = this.provisioned.functionOf(onFailure);
    this.destinations.push({ functionId, condition, target: targetFunction ?? onFailure });
    if (targetFunction) return this.invokeAsync(targetFunction, record);
    const queue = this.provisioned.queueOfArn(onFailure);
    if (!queue) throw new Error(`unknown destination ${onFailure}`);
    await this.sqs.send(
      new SendMessageCommand({ QueueUrl: this.provisioned.queueUrls.get(queue), MessageBody: JSON.stringify(record) }),
    );
  }

  /** POST /2015-03-31/functions/{name}/invocations, as the SDK's InvokeCommand sends it. */
  private serveInvokeApi(req: IncomingMessage, res: ServerResponse): void {
    const match = /^\/2015-03-31\/functions\/([^/]+)\/invocations/.exec(req.url ?? '');
    const functionId = match ? this.provisioned.functionOf(decodeURIComponent(match[1]!)) : null;
    readBody(req).then(
      async (body) => {
        if (!functionId) {
          res.writeHead(404, { 'content-type': 'application/json', 'x-amzn-errortype': 'ResourceNotFoundException' });
          return res.end(JSON.stringify({ Type: 'User', message: `Function not found: ${req.url}` }));
        }
        const payload = body.length === 0 ? {} : (JSON.parse(body.toString('utf8')) as unknown);
        if (req.headers['x-amz-invocation-type'] === 'Event') {
          this.invokeAsync(functionId, payload);
          res.writeHead(202, { 'x-amzn-requestid': randomUUID() });
          return res.end();
        }
        const result = await this.invoke(functionId, payload);
        res.writeHead(200, {
          'content-type': 'application/json',
          ...(result.error ? { 'x-amz-function-error': 'Unhandled' } : {}),
        });
        res.end(JSON.stringify(result.error ?? result.payload ?? null));
      },
      () => res.destroy(),
    );
  }

  /** Forwards a function's DynamoDB calls to dynalite, failing or delaying those its faults match. */
  private proxyDynamo(faults: DynamoFault[], req: IncomingMessage, res: ServerResponse): void {
    readBody(req).then(
      async (body) => {
        const operation =
          String(req.headers['x-amz-target'] ?? '')
            .split('.')
            .pop() ?? '';
        const fault = faults.find((f) => f.times > 0 && (f.operation === '*' || f.operation === operation));
        if (fault) {
          fault.times -= 1;
          if (fault.kind === 'error') {
            res.writeHead(500, { 'content-type': 'application/x-amz-json-1.0' });
            return res.end(
              JSON.stringify({
                __type: 'com.amazonaws.dynamodb.v20120810#InternalServerError',
                message: 'injected fault',
              }),
            );
          }
          await new Promise((resolve) => setTimeout(resolve, fault.delayMs ?? 0));
        }
        const target = new URL(this.awsServers.dynamodbEndpoint);
        const forward = httpRequest(
          { host: target.hostname, port: target.port, path: req.url, method: req.method, headers: req.headers },
          (upstream) => {
            res.writeHead(upstream.statusCode ?? 502, upstream.headers);
            upstream.pipe(res);
          },
        );
        forward.on('error', () => res.destroy());
        forward.end(body);
      },
      () => res.destroy(),
    );
  }

  /** Lambda's SQS poller for one event source mapping. */
  private async pollQueue(mapping: Record<string, unknown>): Promise<void> {
    const functionId = (mapping.FunctionName as { Ref: string }).Ref;
    const queueArn = this.provisioned.resolve(mapping.EventSourceArn as never);
    const queueUrl = this.provisioned.queueUrls.get(this.provisioned.queueOfArn(queueArn)!)!;
    const batchSize = Number(mapping.BatchSize ?? 10);
    const windowMs = Number(mapping.MaximumBatchingWindowInSeconds ?? 0) * 1000;
    const reportsItemFailures = ((mapping.FunctionResponseTypes as string[] | undefined) ?? []).includes(
      'ReportBatchItemFailures',
    );
    while (this.running) {
      const batch: Message[] = [];
      const started = Date.now();
      while (this.running && batch.length < batchSize && (batch.length === 0 || Date.now() - started < windowMs)) {
        const out = await this.sqs
          .send(
            new ReceiveMessageCommand({
              QueueUrl: queueUrl,
              MaxNumberOfMessages: Math.min(10, batchSize - batch.length),
              WaitTimeSeconds: batch.length === 0 ? 1 : 0,
              MessageSystemAttributeNames: ['All'],
            }),
          )
          .catch(() => ({ Messages: [] as Message[] }));
        batch.push(...(out.Messages ?? []));
        if (batch.length === 0 && Date.now() - started > 1000) break;
        if ((out.Messages ?? []).length === 0 && batch.length > 0 && windowMs === 0) break;
      }
      if (batch.length === 0) continue;
      this.inFlight += 1;
      try {
        const result = await this.invoke(functionId, sqsEvent(batch, queueArn));
        // A failed invocation leaves the whole batch to come back after its visibility timeout.
        if (result.error) continue;
        const failed = new Set(
          reportsItemFailures
            ? (
                (result.payload as { batchItemFailures?: { itemIdentifier: string }[] } | null)?.batchItemFailures ?? []
              ).map((f) => f.itemIdentifier)
            : [],
        );
        for (const message of batch) {
          if (failed.has(message.MessageId!)) continue;
          await this.sqs.send(new DeleteMessageCommand({ QueueUrl: queueUrl, ReceiptHandle: message.ReceiptHandle }));
        }
      } finally {
        this.inFlight -= 1;
      }
    }
  }

  private async sourceQueuesEmpty(): Promise<boolean> {
    for (const [, mapping] of this.resources('AWS::Lambda::EventSourceMapping')) {
      const arn = this.provisioned.resolve((mapping.Properties as Record<string, unknown>).EventSourceArn as never);
      const url = this.provisioned.queueUrls.get(this.provisioned.queueOfArn(arn)!)!;
      const out = await this.sqs.send(
        new GetQueueAttributesCommand({
          QueueUrl: url,
          AttributeNames: [
            'ApproximateNumberOfMessages',
            'ApproximateNumberOfMessagesNotVisible',
            'ApproximateNumberOfMessagesDelayed',
          ],
        }),
      );
      const a = out.Attributes ?? {};
      const total =
        Number(a.ApproximateNumberOfMessages ?? 0) +
        Number(a.ApproximateNumberOfMessagesNotVisible ?? 0) +
        Number(a.ApproximateNumberOfMessagesDelayed ?? 0);
      if (total > 0) return false;
    }
    return true;
  }

  private async listen(handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<string> {
    const server = createServer(handler);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
    this.servers.push(server);
    return `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  }

  /** Makes a visible message invisible for `seconds` (tests use it to hold a message back). */
  async changeVisibility(queueUrl: string, receipt: string, seconds: number): Promise<void> {
    await this.sqs.send(
      new ChangeMessageVisibilityCommand({ QueueUrl: queueUrl, ReceiptHandle: receipt, VisibilityTimeout: seconds }),
    );
  }
}

/** The SQS event Lambda's poller builds from received messages. */
function sqsEvent(messages: readonly Message[], queueArn: string): unknown {
  return {
    Records: messages.map((m) => ({
      messageId: m.MessageId,
      receiptHandle: m.ReceiptHandle,
      body: m.Body ?? '',
      attributes: m.Attributes ?? {},
      messageAttributes: {},
      md5OfBody: m.MD5OfBody,
      eventSource: 'aws:sqs',
      eventSourceARN: queueArn,
      awsRegion: REGION,
    })),
  };
}

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}
