// Kind `preprocessing`: the evaluation transform (Resize -> CenterCrop -> ToTensor -> Normalize) and the bare
// ToTensor + Normalize on one uint8 HWC image (inputs/image, stored as int64). Outputs `eval` and `normalize_only`.
import type { KindHandler } from '../runner.js';
import { toFloat64 } from '../tensor_io.js';
import { evalTransform, toNormalizedChw } from '../../data/eval_transform.js';
import type { RgbImage } from '../../data/image.js';

export const preprocessingHandler: KindHandler = (ctx) => {
  const input = ctx.input('inputs/image');
  const [height, width, channels] = input.shape;
  if (input.shape.length !== 3 || channels !== 3) throw new Error(`${ctx.name}: inputs/image must be HWC with 3 channels, got [${input.shape}]`);
  const image: RgbImage = { data: Uint8Array.from(toFloat64(input)), width: width!, height: height! };
  const cfg = ctx.fixture.config ?? {};
  const mean = cfg.mean as number[] | undefined;
  const std = cfg.std as number[] | undefined;
  if (ctx.has('eval')) {
    const crop = (cfg.crop_size as number | undefined) ?? 224;
    const data = evalTransform(image, { resizeSize: cfg.resize_size, cropSize: crop, mean, std });
    ctx.emit('eval', { dtype: 'float32', shape: [3, crop, crop], data });
  }
  if (ctx.has('normalize_only')) {
    ctx.emit('normalize_only', { dtype: 'float32', shape: [3, height!, width!], data: toNormalizedChw(image, mean, std).data });
  }
};
