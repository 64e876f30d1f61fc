/** The asynchronous Lambda invoke, imported by lambdas/wiring.ts in the API function only (it invokes prefill). */
import { InvokeCommand, LambdaClient } from '@aws-sdk/client-lambda';
import { awsClientConfig } from '../lib/adapters/aws-clients';

export async function invokeAsync(
  env: Readonly<Record<string, string | undefined>>,
  client: LambdaClient | undefined,
  functionName: string,
  payload: unknown,
): Promise<LambdaClient> {
  const lambda = client ?? new LambdaClient(awsClientConfig(env, 'lambda'));
  await lambda.send(
    new InvokeCommand({
      FunctionName: functionName,
      InvocationType: 'Event',
      Payload: new TextEncoder().encode(JSON.stringify(payload)),
    }),
  );
  return lambda;
}
