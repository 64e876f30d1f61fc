/**
 * The `disagg` command line. Exit codes: 0 success, 2 bad input (unknown id, config that does not fit, bad flag).
 *
 * Only commander and the few values the help shows load up front: each command imports its module when it
 * runs, so `disagg profiles` never loads the serve stack (and bin/disagg.mjs answers --version itself).
 */
import { readFileSync } from 'node:fs';
import { Command, CommanderError, Option } from 'commander';
import { DTYPES } from '../lib/core/emulator/models';
import { STACK_IDS } from '../lib/core/emulator/stacks';
import type { EstimateFlags } from './commands/estimate';
import type { writeReport } from './commands/report';
import type { ServeFlags } from './commands/serve';
import type { SimulateFlags } from './commands/simulate';
import type { SweepFlags } from './commands/sweep';
import type { PlanFlags } from './commands/plan';
import { DEFAULT_COMPARE, DEFAULT_SWEEP_TARGET, DEFAULT_SYSTEM, EXIT_USAGE } from './commands/constants';
import type { SimResult, Workload } from '../lib/core/sim';

const { version } = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as {
  version: string;
};

const program = new Command()
  .name('disagg')
  .description(
    'Disaggregated LLM inference on AWS: emulated Trainium prefill, Cerebras CS-3 decode, real orchestration.',
  )
  .version(version)
  .exitOverride()
  // One line of what went wrong (commander's own), then where the options are, not the whole help.
  .showHelpAfterError('(add --help after the command to see its options)');

const print = (text: string): void => void process.stdout.write(`${text}\n`);
const printJson = (value: unknown): void => print(JSON.stringify(value, null, 2));

program
  .command('profiles')
  .description('list the emulated devices, links and models, with their sources')
  .option('--json', 'print JSON (includes every figure and its source)')
  .action(async (opts: { json?: boolean }) => {
    const { profilesJson, profilesText } = await import('./commands/profiles');
    if (opts.json) printJson(profilesJson());
    else print(profilesText());
  });

program
  .command('estimate')
  .description('emulated latency of one request, disaggregated and/or colocated')
  .requiredOption('--model <id>', 'model id (see `disagg profiles`)')
  // Artificial Analysis's default workload (about 1,000 tokens in and 1,000 out, artificialanalysis.ai/methodology/
  // performance-benchmarking), the one behind the per-user speeds most providers' figures are compared on.
  .option('--prompt-tokens <n>', 'prompt length in tokens', '1000')
  .option('--output-tokens <n>', 'tokens to generate', '1000')
  .option('--prefill <DEV[xCOUNT]>', 'prefill pool, e.g. trn2x16 (with --decode)')
  .option('--decode <DEV[xCOUNT]>', 'decode pool, e.g. cs3x4 (with --prefill)')
  .option('--colocated <DEV[xCOUNT]>', 'one pool doing both phases, e.g. h100x8')
  .option(
    '--link <id>',
    'network between the prefill and decode pools (default: the slower of their instance networks)',
  )
  .option('--batch <n>', 'decode batch size', '1')
  .option('--cached-tokens <n>', 'prompt tokens already in the prefix cache (not recomputed)', '0')
  .addOption(new Option('--dtype <dtype>', 'weight and KV precision (both)').choices([...DTYPES]))
  .addOption(
    new Option('--weight-dtype <dtype>', "weight precision (default: the published checkpoint's)").choices([...DTYPES]),
  )
  .addOption(new Option('--kv-dtype <dtype>', 'KV cache precision (default bf16)').choices([...DTYPES]))
  .option('--memory-fraction <f>', 'share of device memory usable for weights and KV', '0.9')
  .option('--stack <ids>', `serving stacks, one per device family (default: the newest; ${STACK_IDS.join(', ')})`)
  .option('--overlap', 'stream the KV layer by layer while prefill runs')
  .option(
    '--speculative-draft <model>',
    'speculative decoding with this draft (a model, or eagle for a draft head; none turns a provider default off)',
  )
  .option('--draft-tokens <k>', 'tokens drafted per verification step (with --speculative-draft)')
  .option('--acceptance <a>', 'probability a drafted token is accepted, 0..1 (with --speculative-draft)')
  .option('--json', 'print one JSON object')
  .addHelpText('after', '\nWith no pool flags: disaggregated trn2x16 -> cs3x4 and colocated h100x8, side by side.')
  .action(async (flags: EstimateFlags) => {
    const { estimateText, runEstimate } = await import('./commands/estimate');
    const { result, pools } = runEstimate(flags);
    if (flags.json) printJson(result);
    else print(estimateText(result, pools));
  });

program
  .command('calibrate')
  .description('the timing model against published measurements, and its leave-one-group-out cross-validation')
  .option('--json', 'print JSON')
  .option('--markdown', 'print the fit and cross-validation tables as markdown (as in the README)')
  .option('--all', 'list every serving point, the SplitwiseSim and Neuron table rows included')
  .option('--fit', 'refit the factors and cross-validate (about a minute)')
  .option('--write', 'with --fit: store the fitted factors, bands and cross-validation in the sources')
  .option('--report <file>', 'write an HTML page: emulated against measured for every point, and the cross-validation')
  .action(
    async (opts: {
      json?: boolean;
      markdown?: boolean;
      all?: boolean;
      fit?: boolean;
      write?: boolean;
      report?: string;
    }) => {
      const { UsageError } = await import('./commands/errors');
      if (opts.write && !opts.fit) throw new UsageError('--write goes with --fit');
      if (opts.report !== undefined) {
        const [{ writeCalibrationReport }, { checkReportPath }] = await Promise.all([
          import('./commands/calibration-report'),
          import('./commands/simulate'),
        ]);
        await checkReportPath(opts.report);
        const bytes = await writeCalibrationReport(opts.report);
        return print(`wrote ${opts.report} (${Math.round(bytes / 1024)} KB): open it in a browser`);
      }
      const [{ calibrationJson, calibrationMarkdown, calibrationText, refit }, { progressBar }, { calibrationTable }] =
        await Promise.all([
          import('./commands/calibrate'),
          import('./commands/simulate'),
          import('../lib/core/emulator/calibration'),
        ]);
      if (opts.fit) {
        const bar = progressBar('cross-validation', 'folds');
        const text = await refit(opts.write === true, (done, total) => bar.update(done, total));
        bar.stop();
        return print(text);
      }
      if (opts.json) printJson(calibrationJson(calibrationTable()));
      else if (opts.markdown) print(calibrationMarkdown());
      else print(calibrationText(opts.all === true));
    },
  );

program
  .command('serve')
  .description('serve the pipeline embedded in this process behind an OpenAI-compatible API')
  .option('--config <file>', 'JSON file with any of the options below (camelCase keys)')
  .option('--host <host>', 'address to listen on (default 127.0.0.1)')
  .option('--port <port>', 'port (default 8080; env PORT)')
  .option('--model <id>', 'emulated target model (default llama-3.3-70b)')
  .option('--prefill <DEV[xCOUNT]>', 'prefill pool (default trn2x16)')
  .option('--decode <DEV[xCOUNT]>', 'decode pool (default cs3x4)')
  .option('--colocated <DEV[xCOUNT]|none>', 'colocated baseline pool (default h100x8)')
  .option('--time-scale <x>', '1 sleeps emulated time in real time, 0 never sleeps (default 1; env DISAGG_TIME_SCALE)')
  .option(
    '--decode-batch <n>',
    'largest running decode batch (default 32); fewer run while their KV does not fit the decode pool',
  )
  .option(
    '--colocate-below <tokens>',
    'run prompts of at most this many tokens colocated in mode auto (default 0: never)',
  )
  .option('--max-prefill-queue <n>', 'requests waiting for prefill before new ones get 429 (default 64)')
  .option('--max-decode-queue <n>', 'requests waiting for decode before new ones get 429 (default 256)')
  .option('--kv-failure-policy <policy>', 'missing or corrupt KV: fail or recompute (default recompute)')
  .option('--stack <ids>', 'serving stacks, one per device family (default: the newest of each; see calibrate)')
  .option('--redis-url <url>', 'keep KV blobs and results in Redis (env REDIS_URL)')
  .option('--backend <name>', 'reference (default, offline) or bedrock')
  .option('--bedrock-model-id <id>', 'Bedrock model for --backend bedrock (env DISAGG_BEDROCK_MODEL_ID)')
  .option('--no-auth', 'serve without an API key (prints a warning)')
  .option(
    '--cors-origin <origins>',
    'let browser pages from these origins call the API: comma-separated, or * (env DISAGG_CORS_ORIGINS; default none)',
  )
  .option(
    '--log-level <level>',
    'JSON log on stdout: debug, info (default: a line per request), warn, error or silent (env DISAGG_LOG_LEVEL)',
  )
  .option('--debug', 'same as --log-level debug')
  .option(
    '--drain-timeout <seconds>',
    'on SIGTERM/SIGINT, let admitted requests finish this long before ending them (default 30; env DISAGG_DRAIN_SECONDS)',
  )
  .option('--workers', 'run the prefill and decode stages in worker threads, so HTTP has this thread to itself')
  .action(async (flags: ServeFlags) => (await import('./commands/serve')).runServe(flags));

program
  .command('dashboard')
  .description(
    'write the dashboard as one static HTML file to point at a deployed API (it polls the requests it sends)',
  )
  .requiredOption('--out <file>', 'where to write the page')
  .action(async (flags: { out: string }) => {
    const { dashboardHtml } = await import('../lib/local/dashboard');
    const { writeFileSync } = await import('node:fs');
    writeFileSync(flags.out, dashboardHtml({ mode: 'poll' }));
    process.stdout.write(`wrote ${flags.out}: open it with #api=<OpenAiBaseUrl without /v1>&key=<API key>\n`);
  });

/** Workload and system flags shared by `simulate` and `sweep`. */
function simulationOptions(command: Command): Command {
  return command
    .option('--trace <file>', 'replay a trace: Azure CSV (TIMESTAMP,ContextTokens,GeneratedTokens) or Mooncake JSONL')
    .option('--skip-bad-lines', 'skip malformed trace lines (listed on stderr) instead of failing')
    .option(
      '--synthetic [rate[:prompt[:output]]]',
      'Poisson arrivals; the shorthand sets --rate, --prompt-mean and --output-mean',
    )
    .option('--rate <req/s>', 'synthetic: mean arrival rate, requests per second')
    .option('--prompt-mean <tokens>', 'synthetic: prompt length (default 1000); agents: first prompt (default 2000)')
    .option('--output-mean <tokens>', 'synthetic and agents: output length per request or turn (default 200)')
    .option('--lognormal', 'draw lengths from lognormals with those means (default: fixed lengths)')
    .option('--prompt-sigma <s>', 'lognormal sigma of prompt lengths (default 0.99, the Azure 2023 conversation trace)')
    .option('--output-sigma <s>', 'lognormal sigma of output lengths (default 0.86, the Azure 2023 conversation trace)')
    .option('--requests <n>', 'synthetic: number of requests (default 2000)')
    .option('--duration-s <s>', 'synthetic: generate arrivals for this long instead of a count')
    .option('--agents <n>', 'agent sessions running at once, each a closed loop of turns')
    .option('--turns <n>', 'agents: turns per session (default 10)')
    .option('--tool-tokens <n>', 'agents: tool-result tokens appended after each turn (default 300)')
    .option('--think-ms <ms>', 'agents: pause between an answer and the next turn (default 2000)')
    .option('--rate-scale <x>', 'divide arrival (and think) times by x: x > 1 is a higher rate')
    .option('--limit <n>', 'only the first n requests')
    .option('--seed <n>', 'seed for synthetic and agent workloads', '1')
    .option('--model <id>', 'emulated model', 'llama-3.3-70b')
    .option(
      '--system <spec>',
      `colocated:DEVxN[*R] or disagg:DEVxN[*R]+DEVxN[*R], e.g. disagg:trn2x16*2+cs3x8 (default ${DEFAULT_SYSTEM}, compared with ${DEFAULT_COMPARE.join(' ')})`,
    )
    .option('--compare <spec...>', 'more systems to run the same workload through')
    .option('--link <id>', 'network between prefill and decode pools (default: the slower instance network)')
    .option('--no-prefix-cache', 'turn off the per-replica LRU prefix cache')
    .option(
      '--colocate-below <tokens>',
      'disaggregated: prompts of at most this many tokens prefill on a decode replica',
    )
    .option(
      '--routing <discipline>',
      'queue discipline for every pool: shared (one queue, a free replica takes the oldest) or jsq-tokens (bound on arrival to the replica with the fewest pending tokens)',
      'shared',
    )
    .option(
      '--chunk-tokens <n>',
      'tokens per step: chunked prefill on colocated replicas, whole prompts batched per pass on prefill replicas; 0 turns both off (default per device: vLLM V1, 8192 on GPUs of 70 GiB or more, else 2048)',
    )
    .option(
      '--max-decode-batch <n>',
      'largest running decode batch per replica (default per pool: the stack max_num_seqs, at most what KV memory holds at the median prompt + max_tokens); fewer run while their KV does not fit',
    )
    .option('--decode-batch <n>', 'the same as --max-decode-batch')
    .option(
      '--max-tokens <n>',
      "max_tokens every request sends: each reserves prompt + this much KV, as the live pipeline does (default: the workload's longest answer); longer answers stop at it",
    )
    .option('--max-prefill-queue <n>', 'admission: prompts waiting for prefill, for the whole system (default 64)')
    .option('--max-decode-queue <n>', 'admission: handoffs waiting for decode, for the whole system (default 256)')
    .option(
      '--fit-context <tokens>',
      "prompt + output tokens of one request each replica must hold beside the weights, else the system is refused (default: the workload's median); a longer request that cannot fit is rejected as too_large_for_decode_memory",
    )
    .addOption(
      new Option(
        '--band <end>',
        "charge device time at this end of the timing model's cross-validated error band (default mid)",
      ).choices(['low', 'mid', 'high']),
    )
    .option('--stack <ids>', `serving stacks, one per device family (default: the newest; ${STACK_IDS.join(', ')})`)
    .option('--cs3-price-per-hour <usd>', 'USD per CS-3 system-hour (no public price; cost is n/a without it)')
    .option('--slo-ttft-ms <ms>', 'goodput objective for time to first token (default 2000)')
    .option('--slo-tpot-ms <ms>', 'goodput objective for time per output token (default 100)')
    .option('--json', 'print JSON')
    .option('--report <file.html>', 'also write a self-contained HTML report (charts; no network needed to view it)');
}

/** Tells stderr where the report went, so stdout stays the table or the JSON. */
type ReportData = Parameters<typeof writeReport>[1];

async function report(file: string, data: ReportData): Promise<void> {
  const { writeReport } = await import('./commands/report');
  const bytes = await writeReport(file, data);
  process.stderr.write(`disagg: wrote ${file} (${Math.round(bytes / 1024)} KiB)\n`);
}

simulationOptions(
  program
    .command('simulate')
    .description('replay a workload through systems on a virtual clock (same timing model and policies as serve)'),
)
  .addHelpText(
    'after',
    `
Examples:
  disagg simulate --trace samples/azure-llm-2023-conv-sample.csv
  disagg simulate --trace samples/azure-llm-2023-conv-sample.csv --system disagg:trn2x16*2+cs3x8 --compare colocated:h100x8*4
  disagg simulate --synthetic 5:1000:200 --lognormal --requests 5000 --system colocated:h100x8*2
  disagg simulate --agents 16 --turns 10 --tool-tokens 300 --think-ms 2000 --system disagg:trn2x16+cs3x8

--json prints {"systems": [{"spec", "requests", "completed", "rejected", "ttftMs": {"p50", "p90", "p99"}, "tpotMs",
"e2eMs", "outputTokensPerSecond", "goodputRps", "sloAttainment", "costPerMillionOutputTokens", then more keys}]}.`,
  )
  .action(async (flags: SimulateFlags) => {
    const { checkReportPath, runSimulate, simulateJson, simulateText, systemsFromFlags } =
      await import('./commands/simulate');
    await checkReportPath(flags.report);
    const { workload, results } = await runSimulate(flags);
    if (flags.json) printJson(simulateJson(results));
    else print(simulateText(workload, results));
    if (flags.report !== undefined) {
      const { specs, options } = systemsFromFlags(flags);
      const { simulateReportData } = await import('./commands/report');
      await report(flags.report, simulateReportData(workload, specs, options, results));
    }
  });

simulationOptions(
  program
    .command('sweep')
    .description('raise the load step by step; report per system the highest load meeting the SLOs for most requests'),
)
  .option('--rates <a,b,c>', 'load steps: synthetic rates in req/s, or rate scales for a trace or agents')
  .option('--from <x>', 'first load step (with --to)')
  .option('--to <x>', 'last load step')
  .option('--steps <n>', 'number of evenly spaced steps from --from to --to (default 5)')
  .option('--target <fraction>', 'SLO attainment a load must keep', String(DEFAULT_SWEEP_TARGET))
  .action(async (flags: SweepFlags) => {
    const { runSweep, sweepJson, sweepText } = await import('./commands/sweep');
    await (await import('./commands/simulate')).checkReportPath(flags.report);
    const runs: { workload: Workload; result: SimResult }[][] = [];
    const result = await runSweep(
      flags,
      flags.report === undefined
        ? undefined
        : (s, k, workload, run) => ((runs[s] ??= [])[k] = { workload, result: run }),
    );
    if (flags.json) printJson(sweepJson(result));
    else print(sweepText(result));
    if (flags.report !== undefined) {
      const { sweepReportData } = await import('./commands/report');
      await report(flags.report, sweepReportData(result, runs));
    }
  });

simulationOptions(
  program
    .command('plan')
    .description(
      'search pool shapes and replica counts per family; print the cheapest system of each meeting the SLOs and the cost frontier',
    ),
)
  .option(
    '--families <list>',
    'device families: PREFILL+DECODE for a split, a device alone for colocated (default trn2+cs3,h100,h200,b200,cs3,trn2)',
  )
  .option('--attainment <fraction>', 'share of requests that must meet both SLOs (default 0.9)')
  .addHelpText(
    'after',
    `
Examples:
  disagg plan --trace samples/azure-llm-2023-conv-sample.csv
  disagg plan --trace samples/azure-llm-2023-conv-sample.csv --cs3-price-per-hour 100 --slo-tpot-ms 20
  disagg plan --synthetic 4:2000:300 --lognormal --requests 3000 --families trn2+cs3,h100,cs3 --json

Without --cs3-price-per-hour, systems with CS-3 are ranked by their CS-3 count and the plan gives the CS-3 price at
which each would be the cheapest. --system and --compare do not apply: the plan chooses the systems.
--json prints {"cheapest": [{"family", "spec", "dollarsPerHour", "sloAttainment", "ttftMs": {"p50", "p90", "p99"},
"tpotMs", "e2eMs", then more keys}], "frontier": [...], then more keys}; each spec runs as disagg simulate --system.`,
  )
  .action(async (flags: PlanFlags) => {
    const { planJson, planText, runPlan } = await import('./commands/plan');
    const run = await runPlan(flags);
    if (flags.json) printJson(planJson(run));
    else print(planText(run));
    if (flags.report !== undefined) {
      const [{ planReportData }, { systemsFromFlags }] = await Promise.all([
        import('./commands/report'),
        import('./commands/simulate'),
      ]);
      await report(flags.report, planReportData(run, systemsFromFlags(flags).options));
    }
  });

export async function main(argv: readonly string[]): Promise<number> {
  try {
    await program.parseAsync(argv as string[], { from: 'user' });
    return 0;
  } catch (err) {
    // Help and version exit 0; every other commander error is a usage error.
    if (err instanceof CommanderError) return err.exitCode === 0 ? 0 : EXIT_USAGE;
    const [{ ProfileError }, { ConfigError }] = await Promise.all([
      import('../lib/core/emulator'),
      import('../lib/core/engine/config'),
    ]);
    if (err instanceof ProfileError || err instanceof ConfigError) {
      process.stderr.write(`disagg: ${err.message}\n`);
      return EXIT_USAGE;
    }
    throw err;
  }
}

process.exitCode = await main(process.argv.slice(2));
