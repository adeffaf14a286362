// A data-parallel replica (data_parallel.ts) in its worker thread: builds the run's networks once, then for each
// posted iteration takes replica 0's weights and centers, computes the gradients of its own share of the batch and
// posts them back. It keeps nothing between iterations but the networks' shapes.
import { parentPort, workerData } from 'node:worker_threads';
import { initBackend, setBackendThreads, type BackendName } from '../backend/select.js';
import { batchBuilder } from './batches.js';
import { assignValues, toReply, type ReplicaSetup, type ReplicaWork } from './data_parallel.js';
import { frozenSchedules } from './plan.js';
import { buildRunNetworks } from './run_networks.js';
import { SSLTrainer, trainerPolicies } from './trainer.js';
import { Rng } from '../util/rng.js';

const setup = workerData as ReplicaSetup;
const port = parentPort!;

async function main(): Promise<void> {
  await initBackend(setup.backend as BackendName | 'auto');
  setBackendThreads(setup.threads);
  const { cfg, nets } = await buildRunNetworks(setup.config, () => {});
  const distilling = nets.ema !== undefined;
  const trainer = new SSLTrainer({ student: nets.student, teacher: nets.teacher, ema: nets.ema, schedules: frozenSchedules(cfg.teacher.teacher_temp), policies: trainerPolicies(cfg) });
  const batches = batchBuilder(cfg, nets.student, nets.studentGlobalSize, distilling, cfg.train.batch_size_per_gpu, setup.replica);
  const centers = [trainer.dinoLoss.center, trainer.ibotLoss.center];
  port.on('message', (w: ReplicaWork) => {
    try {
      assignValues(trainer.studentParams, w.student);
      if (w.teacher) assignValues(trainer.teacherParams, w.teacher);
      w.centers.forEach((c, k) => centers[k]!.set(c));
      // Its own stochastic depth draws, a function of the iteration so that a resumed run draws the same (replica 0
      // keeps the run's RNG, saved in the checkpoint).
      nets.student.backbone.dropPathRng.setState(new Rng([cfg.train.seed, 0xd509, setup.replica, w.iteration]).getState());
      const batch = batches.toBatch(w.crops, w.iteration);
      try {
        const g = trainer.computeGradients(batch, w.teacherTemp);
        const reply = toReply(g, centers.map((c) => c.pendingValues()));
        port.postMessage(reply, reply.grads.map(([, a]) => a.buffer as ArrayBuffer));
      } finally {
        batches.dispose(batch);
      }
    } catch (e) {
      port.postMessage({ error: (e as Error).stack ?? String(e) });
    }
  });
  port.postMessage({ ready: true });
}

main().catch((e: Error) => port.postMessage({ error: e.stack ?? String(e) }));
