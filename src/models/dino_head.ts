// The DINO projection head of both versions: MLP (Linear-GELU-...-Linear to the bottleneck) → L2 normalise →
// weight-normalised Linear without bias (prototypes). Names follow the official state dict: `mlp.0/2/4` (GELUs, and
// BatchNorms when useBn, take the other indices; a 1-layer head's MLP is the Linear `mlp` itself),
// `last_layer.weight_g` [K, 1] and `last_layer.weight_v` [K, bottleneck].
// Init order of the official code: the MLP gets trunc_normal(.02) / zero bias; the last layer is created afterwards,
// so weight_v keeps torch's default Linear init U(±1/√bottleneck) and weight_g is filled with 1.
import { tf, type Tensor, type Variable } from '../backend/tf.js';
import { ModuleList } from '../nn/containers.js';
import { gelu, l2Normalize } from '../nn/functional.js';
import { constant, torchDefaultBound, uniform } from '../nn/init.js';
import { Linear } from '../nn/linear.js';
import { Module } from '../nn/module.js';
import { BatchNorm1d } from '../nn/norm.js';
import { Rng } from '../util/rng.js';

export interface DINOHeadOptions {
  inDim: number;
  outDim: number;
  hiddenDim?: number;
  bottleneckDim?: number;
  nlayers?: number;
  useBn?: boolean;
  /**
   * DINO v1's norm_last_layer: weight_g is frozen at 1 (not trainable), so prototypes stay unit-norm.
   * v1's own default is true; DINOv2 never freezes it (false, our default).
   */
  normLastLayer?: boolean;
  /** Bias of the MLP Linears (DINOv2's mlp_bias; v1 always has them). */
  mlpBias?: boolean;
  seed?: number;
}

/** The weight-normalised last layer: W = g · v / ‖v‖ (row norms), no bias. */
export class WeightNormLinear extends Module {
  readonly weightG: Variable;
  readonly weightV: Variable;

  constructor(inDim: number, outDim: number, rng: Rng, freezeG: boolean) {
    super();
    this.weightG = this.addParam('weight_g', constant([outDim, 1], 1), !freezeG);
    this.weightV = this.addParam('weight_v', uniform(rng, [outDim, inDim], torchDefaultBound(inDim)));
  }

  /** The effective weight [K, in] = g · v / ‖v‖_row (torch._weight_norm over dim 0, no eps). */
  effectiveWeight(): Tensor {
    return tf.tidy(() => tf.mul(this.weightV, tf.div(this.weightG, tf.norm(this.weightV, 'euclidean', 1, true))));
  }

  forward(x: Tensor): Tensor {
    return tf.tidy(() => tf.matMul(x, this.effectiveWeight(), false, true));
  }
}

export class DINOHead extends Module {
  /** A Linear when nlayers = 1, else the indexed Sequential. */
  readonly mlp: Linear | ModuleList;
  readonly lastLayer: WeightNormLinear;
  private readonly layers: ('linear' | 'bn' | 'gelu')[] = [];
  private readonly modules: (Linear | BatchNorm1d | null)[] = [];

  constructor(opts: DINOHeadOptions) {
    super();
    const { inDim, outDim, hiddenDim = 2048, bottleneckDim = 256, useBn = false, normLastLayer = false, mlpBias = true } = opts;
    const nlayers = Math.max(opts.nlayers ?? 3, 1);
    const rng = new Rng([opts.seed ?? 0, 0x4ead]);
    const lin = (i: number, o: number) => new Linear(i, o, { bias: mlpBias, rng, std: 0.02 });
    if (nlayers === 1) {
      this.mlp = this.addModule('mlp', lin(inDim, bottleneckDim));
      this.layers.push('linear');
      this.modules.push(this.mlp);
    } else {
      const seq = this.addModule('mlp', new ModuleList());
      const add = (kind: 'linear' | 'bn' | 'gelu', m: Linear | BatchNorm1d | null) => {
        if (m) seq.set(this.layers.length, m);
        this.layers.push(kind);
        this.modules.push(m);
      };
      const dims = [inDim, ...Array(nlayers - 1).fill(hiddenDim), bottleneckDim] as number[];
      for (let l = 0; l < nlayers; l++) {
        add('linear', lin(dims[l]!, dims[l + 1]!));
        if (l < nlayers - 1) {
          if (useBn) add('bn', new BatchNorm1d(hiddenDim));
          add('gelu', null);
        }
      }
      this.mlp = seq;
    }
    this.lastLayer = this.addModule('last_layer', new WeightNormLinear(bottleneckDim, outDim, rng, normLastLayer));
  }

  /** True when the MLP has BatchNorm layers (their mode decides batch vs running statistics). */
  get hasBatchNorm(): boolean {
    return this.layers.includes('bn');
  }

  /** The MLP output (bottleneck features before L2 normalisation) [B, bottleneck]. */
  forwardMlp(x: Tensor): Tensor {
    return tf.tidy(() => {
      let h = x;
      this.layers.forEach((kind, i) => {
        h = kind === 'gelu' ? gelu(h) : (this.modules[i] as Linear | BatchNorm1d).forward(h);
      });
      return h;
    });
  }

  /** Both the MLP output and the prototype scores. */
  forwardWithMlp(x: Tensor): { mlpOut: Tensor; out: Tensor } {
    return tf.tidy(() => {
      const mlpOut = this.forwardMlp(x);
      return { mlpOut, out: this.lastLayer.forward(l2Normalize(mlpOut, -1, 1e-12)) };
    });
  }

  /** Prototype scores [B, outDim]. */
  forward(x: Tensor): Tensor {
    return tf.tidy(() => this.lastLayer.forward(l2Normalize(this.forwardMlp(x), -1, 1e-12)));
  }

  /** g · v / ‖v‖, [outDim, bottleneck]. */
  effectiveLastLayerWeight(): Tensor {
    return this.lastLayer.effectiveWeight();
  }

  /** Parameter count without building the head. */
  static countParameters(o: DINOHeadOptions): number {
    const { inDim, outDim, hiddenDim = 2048, bottleneckDim = 256, useBn = false, mlpBias = true } = o;
    const nlayers = Math.max(o.nlayers ?? 3, 1);
    const dims = nlayers === 1 ? [inDim, bottleneckDim] : [inDim, ...Array(nlayers - 1).fill(hiddenDim), bottleneckDim];
    let n = 0;
    for (let l = 0; l < dims.length - 1; l++) n += dims[l]! * dims[l + 1]! + (mlpBias ? dims[l + 1]! : 0);
    if (useBn && nlayers > 1) n += (nlayers - 1) * 2 * hiddenDim;
    return n + outDim + outDim * bottleneckDim;
  }
}
