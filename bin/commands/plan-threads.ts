/**
 * Runs `disagg plan`'s family searches in worker threads, one family at a time per thread, so a plan uses every
 * core (the searches share nothing; lib/core/sim/planner.ts assembles them). One core: the same searches inline.
 */
import { availableParallelism } from 'node:os';
import { extname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { ProfileError } from '../../lib/core/emulator';
import {
  assemblePlan,
  planFamily,
  type FamilyPlan,
  type PlanOptions,
  type PlanResult,
  type Workload,
} from '../../lib/core/sim';

/** This module's sibling thread entry, .ts under tsx and .js once compiled. */
const ENTRY = new URL(`./plan-thread${extname(fileURLToPath(import.meta.url))}`, import.meta.url).href;

/** Threads do not inherit tsx's programmatic registration: it is registered there before the entry loads. */
const BOOTSTRAP = `
const { workerData } = require('node:worker_threads');
(async () => {
  if (workerData.tsx) (await import(workerData.tsx)).register();
  await import(workerData.entry);
})();
`;

/** A family's search before it reports its first simulation: a guess for the progress bar's total. */
const PLANNED_GUESS = 8;

export type ThreadMessage =
  | { readonly type: 'progress'; readonly index: number; readonly done: number; readonly planned: number }
  | { readonly type: 'done'; readonly index: number; readonly plan: FamilyPlan }
  /** `usage`: the error was a ProfileError (bad input), which the CLI answers with exit 2. */
  | { readonly type: 'error'; readonly index: number; readonly message: string; readonly usage: boolean };

export interface ThreadTask {
  readonly workload: Workload;
  readonly options: Omit<PlanOptions, 'onProgress'>;
  readonly index: number;
}

export async function planInThreads(
  workload: Workload,
  options: PlanOptions,
  threads = Math.min(availableParallelism(), options.families.length),
): Promise<PlanResult> {
  const { onProgress, ...sendable } = options;
  const families = options.families.length;
  const done = new Array<number>(families).fill(0);
  const planned = new Array<number>(families).fill(PLANNED_GUESS);
  const report = (): void => onProgress?.(sum(done), Math.max(sum(done), sum(planned)));
  if (threads <= 1) {
    const plans = options.families.map((_, k) =>
      planFamily(workload, { ...sendable, onProgress: (d, p) => ((done[k] = d), (planned[k] = p), report()) }, k),
    );
    return assemblePlan(options, plans);
  }
  const plans = new Array<FamilyPlan>(families);
  let next = 0;
  const tsx = ENTRY.endsWith('.ts') ? import.meta.resolve('tsx/esm/api') : null;
  const runThread = (): Promise<void> =>
    new Promise((resolve, reject) => {
      const worker = new Worker(BOOTSTRAP, { eval: true, name: 'disagg-plan', workerData: { entry: ENTRY, tsx } });
      const give = (): void => {
        if (next >= families) {
          void worker.terminate().then(() => resolve());
          return;
        }
        const task: ThreadTask = { workload, options: sendable, index: next++ };
        worker.postMessage(task);
      };
      worker.on('message', (m: ThreadMessage) => {
        if (m.type === 'progress') {
          done[m.index] = m.done;
          planned[m.index] = m.planned;
          report();
        } else if (m.type === 'done') {
          plans[m.index] = m.plan;
          done[m.index] = m.plan.simulations;
          planned[m.index] = m.plan.simulations;
          report();
          give();
        } else {
          void worker.terminate();
          reject(m.usage ? new ProfileError(m.message) : new Error(`a plan thread failed: ${m.message}`));
        }
      });
      worker.on('error', reject);
      worker.on('online', give);
    });
  await Promise.all(Array.from({ length: threads }, runThread));
  return assemblePlan(options, plans);
}

const sum = (a: readonly number[]): number => a.reduce((x, y) => x + y, 0);
