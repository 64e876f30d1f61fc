/** The Bedrock backend, imported by lambdas/wiring.ts only where the deployment uses it. */
import { BedrockRuntimeClient } from '@aws-sdk/client-bedrock-runtime';
import { awsClientConfig } from '../lib/adapters/aws-clients';
import { BedrockBackend } from '../lib/adapters/backend-bedrock';
import type { GenerationBackend } from '../lib/core/ports';

export function bedrockBackend(
  env: Readonly<Record<string, string | undefined>>,
  modelId: string,
  client: BedrockRuntimeClient | undefined,
): { backend: GenerationBackend; client: BedrockRuntimeClient } {
  const bedrock = client ?? new BedrockRuntimeClient(awsClientConfig(env, 'bedrockRuntime'));
  return { backend: new BedrockBackend({ client: bedrock, modelId }), client: bedrock };
}
