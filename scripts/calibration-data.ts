/**
 * Turns the published data sets in data/calibration/ (kept unchanged, with their sources and licences in
 * data/calibration/README.md) into the typed rows the calibration reads: lib/core stays pure, so it cannot
 * read files, and the rows it needs are a small summary of the raw tables (medians of repeated runs, the
 * matrix-multiply operators, intra-node all-reduces).
 *
 *   npx tsx scripts/calibration-data.ts          # rewrite lib/core/emulator/calibration/data.ts
 *   npx tsx scripts/calibration-data.ts --check  # exit 1 if it is out of date
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'csv-parse/sync';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const dataDir = join(root, 'data', 'calibration');
const outFile = join(root, 'lib', 'core', 'emulator', 'calibration', 'data.ts');

type Row = Record<string, string>;
const read = (file: string): Row[] =>
  parse(readFileSync(join(dataDir, file), 'utf8'), { columns: true, skip_empty_lines: true, trim: true }) as Row[];

const median = (values: number[]): number => {
  const s = [...values].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
};
const round = (x: number, digits = 4): number => Number(x.toPrecision(digits + 2));

/** SplitwiseSim: median over the 5 runs of each configuration; power-capped runs left out. */
function splitwise(): string[] {
  const groups = new Map<string, { prompt: number[]; token: number[]; key: (string | number)[] }>();
  for (const r of read('splitwise-perf-model.csv')) {
    const hardware = r.hardware as string;
    if (hardware.endsWith('pcap')) continue;
    const key = [
      r.model === 'llama2-70b' ? 'llama-2-70b' : 'bloom-176b',
      hardware.split('-')[0] as string,
      Number(r.tensor_parallel),
      Number(r.prompt_size),
      Number(r.batch_size),
      Number(r.token_size),
    ];
    const id = key.join('/');
    const g = groups.get(id) ?? { prompt: [], token: [], key };
    g.prompt.push(Number(r.prompt_time));
    g.token.push(Number(r.token_time));
    groups.set(id, g);
  }
  return [...groups.values()].map(
    (g) =>
      `  [${g.key.map((k) => JSON.stringify(k)).join(', ')}, ${round(median(g.prompt))}, ${round(median(g.token))}],`,
  );
}

/** The token counts kept from Vidur's operator profiles: powers of two, the shapes serving runs most. */
const VIDUR_TOKENS = new Set([1, 8, 64, 256, 1024, 4096]);
const VIDUR_OPS = ['attn_pre_proj', 'attn_post_proj', 'mlp_up_proj', 'mlp_down_proj'];

function vidurGemms(): string[] {
  const out: string[] = [];
  for (const device of ['a100', 'h100']) {
    const seen = new Set<string>();
    for (const r of read(`vidur/compute-${device}-meta-llama-Llama-2-70b-hf-mlp.csv`)) {
      const tokens = Number(r.num_tokens);
      const tp = Number(r.num_tensor_parallel_workers);
      if (!VIDUR_TOKENS.has(tokens)) continue;
      const id = `${device}/${tp}/${tokens}`;
      if (seen.has(id)) continue; // the profile repeats some shapes; the first run stands
      seen.add(id);
      for (const op of VIDUR_OPS) {
        out.push(
          `  [${JSON.stringify(device)}, ${tp}, ${tokens}, ${JSON.stringify(op)}, ${round(Number(r[`time_stats.${op}.median`]))}],`,
        );
      }
    }
  }
  return out;
}

/** Intra-node all-reduces (every worker on one node, the tensor-parallel case) at a log-spaced set of sizes. */
const ALLREDUCE_SIZES = [2048, 18432, 133120, 1048576, 4194304, 16777216, 67108864];

function vidurAllReduce(): string[] {
  const out: string[] = [];
  for (const [device, file] of [
    ['a100', 'vidur/network-a100_dgx-all_reduce.csv'],
    ['h100', 'vidur/network-h100_dgx-all_reduce.csv'],
  ] as const) {
    const groups = new Map<string, number[]>();
    for (const r of read(file)) {
      const workers = Number(r.num_workers);
      if (Number(r.devices_per_node) !== workers) continue;
      const size = Number(r.size);
      if (!ALLREDUCE_SIZES.includes(size)) continue;
      const id = `${workers}/${size}`;
      groups.set(id, [...(groups.get(id) ?? []), Number(r['time_stats.all_reduce.median'])]);
    }
    for (const [id, values] of [...groups.entries()].sort()) {
      const [workers, size] = id.split('/');
      out.push(`  [${JSON.stringify(device)}, ${workers}, ${size}, ${round(median(values))}],`);
    }
  }
  return out;
}

const NEURON_MODELS: Readonly<Record<string, string>> = {
  'Llama-3-8B': 'llama-3.1-8b',
  'Llama-3-70B': 'llama-3.1-70b',
  'Llama-2-7b': 'llama-2-7b',
  'Llama-2-13b': 'llama-2-13b',
  'Llama-2-70b': 'llama-2-70b',
  'Mistral-7B-Instruct-v0.2': 'mistral-7b',
  'CodeLlama-13b-hf': 'codellama-13b',
};

/** The Neuron SDK 2.18 decoder latency tables (trn1.32xlarge, inf2.48xlarge). */
function neuronTables(): string[] {
  const out: string[] = [];
  for (const [device, file] of [
    ['trn1', 'neuron/trn1-latency-decoder.csv'],
    ['inf2', 'neuron/inf2-latency-decoder.csv'],
  ] as const) {
    for (const r of read(file)) {
      const model = NEURON_MODELS[r.Model as string];
      if (model === undefined) throw new Error(`${file}: no model profile for "${r.Model}"`);
      const weights = (r['Weight Storage Data Type'] as string).toLowerCase() === 'int8' ? 'int8' : 'bf16';
      out.push(
        `  [${JSON.stringify(device)}, ${JSON.stringify(model)}, ${Number(r['TP Degree'])}, ${Number(r['Batch Size'])}, ` +
          `${Number(r['Input Length'])}, ${Number(r['Output Length'])}, ${JSON.stringify(weights)}, ` +
          `${round(Number(r['TTFT Latency P50 (ms)']))}, ${round(Number(r['TPOT Latency P50 (ms)']))}, ${JSON.stringify(r['Neuron Version'])}],`,
      );
    }
  }
  return out;
}

function trn2Tutorial(): string[] {
  const rows = read('neuron/trn2-llama3.3-70b-perf.csv');
  return rows.map((r) => {
    const scenario = (r['Scenario (all using BF16)'] as string).toLowerCase();
    const speculative = scenario.includes('speculative') && !scenario.startsWith('no ');
    return `  [${speculative}, ${round(Number(r['TTFT (P50 in ms)']))}, ${round(Number(r['TPOT (P50 in ms)']))}],`;
  });
}

function cerebras(): string[] {
  return read('cerebras-published.csv').map(
    (r) =>
      `  [${JSON.stringify(r.model)}, ${JSON.stringify(r.weights_dtype)}, ${JSON.stringify(r.speculative_decoding)}, ` +
      `${JSON.stringify(r.metric)}, ${Number(r.value)}, ${JSON.stringify(r.published)}, ${JSON.stringify(r.source)}],`,
  );
}

function render(): string {
  return `/**
 * GENERATED by scripts/calibration-data.ts from data/calibration/ (the published data sets, unchanged, with
 * their sources and licences in data/calibration/README.md). Do not edit; rerun the script.
 */

/** SplitwiseSim data/perf_model.csv: [model, device, TP, prompt, batch, output tokens, prompt ms, token ms] (medians of 5 runs). */
export const SPLITWISE_ROWS: readonly (readonly [string, string, number, number, number, number, number, number])[] = [
${splitwise().join('\n')}
];

/** Vidur compute profiles, Llama-2-70B operators: [device, TP, tokens, operator, median ms]. */
export const VIDUR_GEMM_ROWS: readonly (readonly [string, number, number, string, number])[] = [
${vidurGemms().join('\n')}
];

/** Vidur NCCL profiles, intra-node all-reduce: [device, workers, bytes, median ms]. */
export const VIDUR_ALLREDUCE_ROWS: readonly (readonly [string, number, number, number])[] = [
${vidurAllReduce().join('\n')}
];

/** Neuron SDK 2.18 decoder latency tables: [device, model, TP (cores), batch, input, output, weight dtype, TTFT p50 ms, TPOT p50 ms, SDK]. */
export const NEURON_TABLE_ROWS: readonly (readonly [string, string, number, number, number, number, string, number, number, string])[] = [
${neuronTables().join('\n')}
];

/** NxD Inference tutorial, Llama 3.3 70B on trn2.48xlarge (TP 64, batch 1, 10k in / 1.5k out): [speculative, TTFT p50 ms, TPOT p50 ms]. */
export const TRN2_TUTORIAL_ROWS: readonly (readonly [boolean, number, number])[] = [
${trn2Tutorial().join('\n')}
];

/** Cerebras announcements: [model, weights, speculative decoding, metric, value, published, source]. */
export const CEREBRAS_ROWS: readonly (readonly [string, string, string, string, number, string, string])[] = [
${cerebras().join('\n')}
];
`;
}

const text = render();
if (process.argv.includes('--check')) {
  let current = '';
  try {
    current = readFileSync(outFile, 'utf8');
  } catch {
    // missing counts as out of date
  }
  if (current !== text) {
    console.error('lib/core/emulator/calibration/data.ts is out of date: run npx tsx scripts/calibration-data.ts');
    process.exit(1);
  }
  console.log('calibration data is up to date');
} else {
  writeFileSync(outFile, text);
  console.log(`wrote ${outFile.slice(root.length + 1)}`);
}
