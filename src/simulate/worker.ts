// Worker thread of `switchyard simulate`: runs the replicates the main thread hands it, one index at a time.
import { parentPort, workerData } from 'node:worker_threads';
import { runReplicate } from './driver.js';
import type { ResolvedScenario } from './scenario.js';

const { scenario } = workerData as { scenario: ResolvedScenario };
const port = parentPort!;

port.on('message', (message: { index: number }) => {
  runReplicate(scenario, message.index).then(
    (result) => port.postMessage({ result }),
    (err: unknown) => port.postMessage({ error: err instanceof Error ? (err.stack ?? err.message) : String(err) }),
  );
});
