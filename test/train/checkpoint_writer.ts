// Child process of kill9.test.ts: writes the training checkpoint at argv[2] in a loop; in version i every tensor value
// is i and progress.iteration is i, so a reader can tell a complete file from a torn one. Prints "saved i" each time.
import type { StateDict } from '../../src/checkpoint/types.js';
import { saveTrainCheckpoint } from '../../src/train/run_checkpoint.js';

const path = process.argv[2]!;
const filled = (n: number, v: number): StateDict => new Map([['w', { dtype: 'float32', shape: [n], data: new Float32Array(n).fill(v) }]]);
for (let i = 1; ; i++) {
  saveTrainCheckpoint(path, {
    student: filled(2_000_000, i),
    teacher: filled(2_000_000, i),
    optimizer: filled(1_000, i),
    center: filled(16, i),
    progress: { iteration: i, epoch: 0, epoch_iteration: i, train_seconds: 0, rng: {}, total_iterations: 0, iters_per_epoch: 1 },
  });
  process.stdout.write(`saved ${i}\n`);
}
