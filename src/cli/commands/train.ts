// `dinots train`: self-supervised training on your images, end to end (DINO by default, DINOv2 with --recipe dinov2).
//   dinots train                       10 minutes on the built-in MNIST, k-NN before/after vs raw pixels, report.html
//   dinots train --data DIR --knn-train DIR_A --knn-test DIR_B --minutes 30 --out RUN
//   dinots train --recipe dinov2 --config vitl14.yaml --set optim.base_lr=0.001 --epochs 1
//   dinots train --resume --out RUN    continue an interrupted run exactly
// The official main_dino.py argument names are accepted for every recipe (--arch, --patch_size, --out_dim, --lr, ...).
// The flags become config layers (cli/train_options.ts); the run, its folder and report are the library's (train/run.ts).
import type { Command } from 'commander';
import { join } from 'node:path';
import { disposeRunNetworks, trainRun, type RunResult } from '../../train/run.js';
import { addOfficialFlags, addRunOptions, refuseConfigFlagsOnResume, trainConfigSource } from '../train_options.js';

export function register(program: Command): void {
  const cmd = program
    .command('train')
    .description('self-supervised training on a dataset (default: DINO, 10 minutes on the built-in MNIST), with k-NN evaluation and a report')
    .option('--recipe <name>', 'dino (main_dino.py; default) or dinov2 (SSLMetaArch: iBOT, KoLeo, layer-wise decay)');
  addOfficialFlags(addRunOptions(cmd));
  cmd.action(async (o: Record<string, unknown>) => {
    const backend = program.opts().backend as string;
    refuseConfigFlagsOnResume(o);
    const prefix = o.recipe === 'dinov2' ? 'dinov2-' : '';
    const out = (o.out as string | undefined) ?? (o.resume ? undefined : join('runs', `${prefix}${new Date().toISOString().replace(/[:.]/g, '-')}`));
    if (!out) throw new Error('--resume needs --out <run folder>');
    const source = o.resume ? {} : trainConfigSource(o, backend);
    await finishCommand(await trainRun(source, { out, resume: Boolean(o.resume), backend }));
  });
}

/** The result line on stdout, the networks freed, the exit code (130 interrupted, 1 non-finite loss). */
export async function finishCommand(r: RunResult): Promise<void> {
  disposeRunNetworks(r.nets);
  const s = r.summary as Record<string, number | null>;
  const f = (v: number | null) => (v === null ? 'n/a' : `${v.toFixed(2)}%`);
  process.stdout.write(
    `${r.status}: ${r.iteration} steps, ${r.imagesPerSecond.toFixed(1)} images/s on ${r.backend}; k-NN top-1 ${f(s.knn_top1_initial!)} -> ${f(s.knn_top1_final!)}` +
      `${r.teacherKnn ? ` (teacher ${f(r.teacherKnn.top1)})` : ''} (raw pixels ${f(s.knn_top1_raw_pixels!)}); ${join(r.out, 'summary.json')}\n`,
  );
  const ev = r.evaluation;
  if (ev) {
    process.stdout.write(`full splits (${ev.knn.length ? 'k-NN top-1' : ''}): ${ev.knn.map((k) => `${k.label} ${f(k.top1)}`).join(', ')}` +
      `${ev.linear ? `; linear probe ${f(ev.linear.top1)}` : ''}\n`);
    const a = ev.attention[0];
    if (a) process.stdout.write(`attention finds the digit: Jaccard ${r.attentionInitial ? `${r.attentionInitial.meanHeads.toFixed(3)} at init -> ` : ''}${a.score.meanHeads.toFixed(3)} (${a.label}, mean of heads, 60% mass)\n`);
  }
  if (r.status === 'interrupted') process.exitCode = 130;
  if (r.status === 'nan') process.exitCode = 1;
}
