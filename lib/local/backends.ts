/**
 * The generation backend a serve process (or each of its stage threads) builds, from a description
 * that can cross a thread boundary: the reference model, Bedrock, or a module that builds one.
 */
import { BedrockRuntimeClient } from '@aws-sdk/client-bedrock-runtime';
import { awsClientConfig } from '../adapters/aws-clients';
import { BedrockBackend } from '../adapters/backend-bedrock';
import { ReferenceBackend } from '../adapters/backend-reference';
import { llama3Tokenizer } from '../adapters/tokenizer-llama3';
import type { GenerationBackend } from '../core/ports';

export type BackendSpec =
  | { readonly kind: 'reference' }
  | { readonly kind: 'bedrock'; readonly modelId: string | undefined }
  /** A module (file URL) whose default export returns the backend; benchmarks use one that does no model compute. */
  | { readonly kind: 'module'; readonly url: string };

export async function createGenerationBackend(spec: BackendSpec): Promise<GenerationBackend> {
  if (spec.kind === 'module') {
    const mod = (await import(spec.url)) as { default?: () => GenerationBackend | Promise<GenerationBackend> };
    if (typeof mod.default !== 'function') {
      throw new Error(`backend module ${spec.url} must export a default function that returns a generation backend`);
    }
    return mod.default();
  }
  if (spec.kind === 'bedrock') {
    return new BedrockBackend({
      client: new BedrockRuntimeClient(awsClientConfig(process.env, 'bedrockRuntime')),
      modelId: requireBedrockModel(spec.modelId),
    });
  }
  // The reference backend's words are Llama 3 tokens whatever the served model is.
  return new ReferenceBackend({ tokenizer: llama3Tokenizer() });
}

function requireBedrockModel(id: string | undefined): string {
  if (!id) throw new Error('--backend bedrock needs --bedrock-model-id (e.g. meta.llama3-3-70b-instruct-v1:0)');
  return id;
}
