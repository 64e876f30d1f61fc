/**
 * How fast the CLI answers: `disagg --version` (no TypeScript loader needed) and `disagg --help` (the
 * loader and the command table, no command module), each the median of fresh processes interleaved with
 * the floor, a fresh `node -e 0`.
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { fmt, median, ratioRow, spreadOf, type BenchRow } from './results';

const REPETITIONS = 15;
const VERSION_TARGET_S = 0.3;
const CLI = fileURLToPath(new URL('../bin/disagg.mjs', import.meta.url));

function wallMs(args: string[]): number {
  const t0 = performance.now();
  const res = spawnSync(process.execPath, args, { encoding: 'utf8', timeout: 30_000 });
  const ms = performance.now() - t0;
  if (res.status !== 0) throw new Error(`${args.join(' ')} failed: ${res.stderr}`);
  return ms;
}

export function cliStartBench(progress: (line: string) => void, quick = false): BenchRow[] {
  const repetitions = quick ? 5 : REPETITIONS;
  progress(`CLI start: ${repetitions} fresh processes each of --version, --help and node -e 0, interleaved`);
  const floor: number[] = [];
  const version: number[] = [];
  const help: number[] = [];
  for (let i = 0; i < repetitions; i++) {
    floor.push(wallMs(['-e', '0']));
    version.push(wallMs([CLI, '--version']));
    help.push(wallMs([CLI, '--help']));
  }
  const v = spreadOf(version);
  return [
    {
      section: 'CLI start',
      metric: '`disagg --version`, median',
      value: v.median / 1000,
      unit: 's',
      spread: { ...v, median: v.median / 1000, min: v.min / 1000, max: v.max / 1000 },
      target: `< ${VERSION_TARGET_S} s`,
      pass: v.median / 1000 < VERSION_TARGET_S,
      note: `${v.n} fresh processes, ${fmt(v.min)}..${fmt(v.max)} ms; a fresh \`node -e 0\` ${fmt(median(floor))} ms`,
    },
    ratioRow(
      {
        section: 'CLI start',
        metric: '`disagg --version`',
        floor: 'a fresh `node -e 0`',
        note: 'ratio per process pair',
      },
      version.map((ms, i) => ms / floor[i]!),
    ),
    ratioRow(
      {
        section: 'CLI start',
        metric: '`disagg --help`',
        floor: 'a fresh `node -e 0`',
        note: `median ${fmt(median(help))} ms: the TypeScript loader (tsx) and the command table, no command module`,
      },
      help.map((ms, i) => ms / floor[i]!),
    ),
  ];
}
