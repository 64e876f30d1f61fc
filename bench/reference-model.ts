/** The reference model's own compute on this CPU, so users can tell it apart from orchestration. */
import { ReferenceBackend } from '../lib/adapters/backend-reference';
import { llama3Tokenizer } from '../lib/adapters/tokenizer-llama3';
import type { BenchRow } from './results';

export async function referenceModelBench(progress: (line: string) => void): Promise<BenchRow[]> {
  progress('reference model: prefill and decode');
  const tokenizer = llama3Tokenizer();
  const backend = new ReferenceBackend({ tokenizer });
  const prompt = Array.from({ length: 2000 }, (_, i) => 1000 + ((i * 7919) % 50_000));
  const sampling = { temperature: 0, topP: 1, seed: 0, maxTokens: 257 };
  await backend.prefill(prompt.slice(0, 200), sampling); // warm up
  const t0 = performance.now();
  const out = await backend.prefill(prompt, sampling);
  const prefillS = (performance.now() - t0) / 1000;
  const session = backend.startDecode({
    promptIds: prompt,
    messages: [],
    kv: out.kv,
    firstToken: out.firstToken,
    sampling,
  });
  const t1 = performance.now();
  let decoded = 0;
  while ((await session.next()) !== null) decoded += 1;
  const decodeS = (performance.now() - t1) / 1000;
  const section = 'reference model (this CPU)';
  return [
    {
      section,
      metric: 'prefill, 2,000-token prompt',
      value: prompt.length / prefillS,
      unit: 'tokens/s',
      target: '',
      pass: null,
    },
    {
      section,
      metric: `decode, ${decoded} tokens at 2,000 context`,
      value: decoded / decodeS,
      unit: 'tokens/s',
      target: '',
      pass: null,
    },
  ];
}
