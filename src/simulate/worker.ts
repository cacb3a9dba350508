// Worker thread of the simulation pool: keeps the scenarios it is sent and runs the replicates it is asked for, one at a time.
import { parentPort } from 'node:worker_threads';
import { runReplicate, type WorkerReply, type WorkerRequest } from './driver.js';
import type { ResolvedScenario } from './scenario.js';

const port = parentPort!;
const scenarios = new Map<number, ResolvedScenario>();

port.on('message', (message: WorkerRequest) => {
  if (message.type === 'scenario') {
    scenarios.set(message.id, message.scenario);
    return;
  }
  const scenario = scenarios.get(message.id);
  if (!scenario) {
    port.postMessage({ error: `unknown scenario ${message.id}` } satisfies WorkerReply);
    return;
  }
  runReplicate(scenario, message.index).then(
    (result) => port.postMessage({ result } satisfies WorkerReply),
    (err: unknown) => port.postMessage({ error: err instanceof Error ? (err.stack ?? err.message) : String(err) } satisfies WorkerReply),
  );
});
