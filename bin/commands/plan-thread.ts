/** A `disagg plan` worker thread: searches the families it is sent (plan-threads.ts), reporting progress. */
import { parentPort } from 'node:worker_threads';
import { ProfileError } from '../../lib/core/emulator';
import { planFamily } from '../../lib/core/sim';
import type { ThreadMessage, ThreadTask } from './plan-threads';

const port = parentPort;
if (!port) throw new Error('plan-thread runs as a worker thread');
port.on('message', (task: ThreadTask) => {
  const send = (m: ThreadMessage): void => port.postMessage(m);
  try {
    const plan = planFamily(
      task.workload,
      { ...task.options, onProgress: (done, planned) => send({ type: 'progress', index: task.index, done, planned }) },
      task.index,
    );
    send({ type: 'done', index: task.index, plan });
  } catch (err) {
    const e = err as Error;
    const usage = err instanceof ProfileError;
    send({ type: 'error', index: task.index, message: usage ? e.message : (e.stack ?? e.message), usage });
  }
});
