// Body of a data-loader worker thread (started through loader_worker_boot.cjs by worker_pool.ts). It rebuilds the
// dataset from its serialisable source, then answers { id, epoch, indices } requests with built batches, transferring
// the Float32Array buffers (no copy). A failure of one batch is sent back as an error message for that batch.
import { parentPort, workerData } from 'node:worker_threads';
import { buildEvalBatch, buildMultiCropBatch, type BuiltBatch } from './batch.js';
import { datasetFromSource } from './datasets.js';
import { DataAugmentationDINO } from './multicrop.js';
import type { WorkerSetup, WorkerReply, WorkerRequest } from './worker_pool.js';

const setup = workerData as WorkerSetup;
let skipped: [string, string][] = [];
const dataset = datasetFromSource(setup.source, { ...setup.datasetOptions, onSkip: (path, reason) => skipped.push([path, reason]) });
const aug = setup.augmentation ? new DataAugmentationDINO(setup.augmentation) : null;

parentPort!.on('message', async (req: WorkerRequest) => {
  const t0 = performance.now();
  try {
    const batch: BuiltBatch = aug
      ? await buildMultiCropBatch(dataset, aug, req.indices, setup.seed, req.epoch)
      : await buildEvalBatch(dataset, setup.evalOptions ?? {}, req.indices);
    const reply: WorkerReply = { id: req.id, batch, skipped, ms: performance.now() - t0 };
    skipped = [];
    parentPort!.postMessage(reply, [...batch.crops.map((c) => c.buffer), batch.labels.buffer, batch.indices.buffer] as ArrayBuffer[]);
  } catch (e) {
    const reply: WorkerReply = { id: req.id, error: (e as Error).stack ?? String(e), skipped, ms: performance.now() - t0 };
    skipped = [];
    parentPort!.postMessage(reply);
  }
});
