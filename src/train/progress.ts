// The training progress bar (cli-progress). In a terminal it redraws in place; without a TTY (CI logs) it prints a
// line every 10 seconds instead (noTTYOutput).
import cliProgress from 'cli-progress';

export interface ProgressValues {
  epoch: number;
  loss: number;
  lr: number;
  /** Overall images/s, and the rates the loader and the model alone would reach. */
  imgs: number;
  loaderImgs: number;
  modelImgs: number;
  entropy: number;
}

export class TrainProgressBar {
  private readonly bar: cliProgress.SingleBar;

  constructor(total: number, start: number) {
    this.bar = new cliProgress.SingleBar(
      {
        format:
          'ep {ep} |{bar}| it {value}/{total} | loss {loss_s} | lr {lr_s} | {imgs_s} img/s (loader {ldr_s}, model {mdl_s}) | H(t) {ent_s} | ETA {eta_formatted}',
        noTTYOutput: true,
        notTTYSchedule: 10_000,
        etaBuffer: 50,
        hideCursor: false,
        stream: process.stderr,
      },
      cliProgress.Presets.shades_classic,
    );
    this.bar.start(total, start, { ep: 0, loss_s: '-', lr_s: '-', imgs_s: '-', ldr_s: '-', mdl_s: '-', ent_s: '-' });
  }

  /** A re-planned run's new iteration count. */
  setTotal(total: number): void {
    this.bar.setTotal(total);
  }

  update(iteration: number, v: ProgressValues): void {
    this.bar.update(iteration, {
      ep: v.epoch,
      loss_s: v.loss.toFixed(4),
      lr_s: v.lr.toExponential(2),
      imgs_s: v.imgs.toFixed(1),
      ldr_s: v.loaderImgs.toFixed(0),
      mdl_s: v.modelImgs.toFixed(1),
      ent_s: v.entropy.toFixed(2),
    });
  }

  stop(): void {
    this.bar.stop();
  }
}
