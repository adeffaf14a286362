// onnxruntime-node forward baseline for `npm run bench -- train-step`: the same torch ViT (bench/torch_vit.py),
// exported to ONNX, run by ORT's CPU execution provider with the same thread count. Inference only.
// onnxruntime-node is not a dependency of dinots: it is 290 MB, and its install script fetches CUDA binaries from
// nuget. Install it for benchmarks only, with the script skipped (the CPU binaries are in the npm tarball):
//   npm install --no-save --ignore-scripts onnxruntime-node@1.30.0
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { runTorchBaseline } from './baseline.js';

export const ORT_INSTALL_HINT = 'npm install --no-save --ignore-scripts onnxruntime-node@1.30.0';

interface OrtModule {
  InferenceSession: { create(path: string, opts: object): Promise<OrtSession> };
  Tensor: new (type: 'float32', data: Float32Array, dims: number[]) => unknown;
}
interface OrtSession {
  run(feeds: Record<string, unknown>): Promise<Record<string, unknown>>;
  release(): Promise<void>;
}

/** onnxruntime-node if it is installed, else null. */
async function loadOrt(): Promise<OrtModule | null> {
  const name = 'onnxruntime-node'; // a variable, so that typecheck does not need the package
  try {
    const m = (await import(name)) as OrtModule & { default?: OrtModule };
    return m.InferenceSession ? m : m.default ?? null;
  } catch {
    return null;
  }
}

/** A loaded ORT session on the exported model and one input: `run()` is one timed-able forward pass. */
export interface OrtForward {
  version: string;
  run(): Promise<void>;
  close(): Promise<void>;
}

/**
 * Exports the torch ViT with `torchArgs` (bench/torch_vit.py's shape flags) to a temporary ONNX file and opens it in
 * onnxruntime-node with `threads` intra-op threads, on a fixed [batch, 3, img, img] input. Null, with the reason on
 * stderr, when onnxruntime-node or the torch export is unavailable.
 */
export async function openOrtForward(torchArgs: (string | number)[], inputShape: number[], threads: number): Promise<OrtForward | null> {
  const ort = await loadOrt();
  if (!ort) {
    process.stderr.write(`onnxruntime-node baseline skipped: not installed (${ORT_INSTALL_HINT})\n`);
    return null;
  }
  const dir = mkdtempSync(join(tmpdir(), 'dinots-ort-'));
  try {
    const file = join(dir, 'vit.onnx');
    if (!runTorchBaseline('bench/torch_vit.py', [...torchArgs, '--export-onnx', file])) return null;
    const session = await ort.InferenceSession.create(file, {
      intraOpNumThreads: threads, interOpNumThreads: 1, executionMode: 'sequential', graphOptimizationLevel: 'all',
    });
    const n = inputShape.reduce((a, b) => a * b, 1);
    const data = Float32Array.from({ length: n }, (_, i) => Math.sin(i * 12.9898) * 0.5);
    const feeds = { x: new ort.Tensor('float32', data, inputShape) };
    const version = createRequire(import.meta.url)('onnxruntime-node/package.json').version as string;
    return {
      version,
      run: async () => void (await session.run(feeds)),
      close: () => session.release(),
    };
  } finally {
    rmSync(dir, { recursive: true, force: true }); // ORT has read the file into the session
  }
}
