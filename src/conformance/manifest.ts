// Types and reading of a conformance fixture folder (format "dino-conformance-fixtures", see ../shared/conformance/README.md).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

export type BinDType = 'float32' | 'float64' | 'int64' | 'int32' | 'uint8' | 'bool' | 'float16';

export interface TensorEntry {
  file: string;
  dtype: BinDType;
  shape: number[];
  role?: 'input' | 'output' | 'stat';
  atol?: number;
  rtol?: number;
  atol_file?: string;
  logical_dtype?: string;
  [k: string]: unknown;
}

export interface FixtureEntry {
  kind: string;
  description?: string;
  config?: Record<string, any>;
  calls?: Record<string, string>;
  checkpoints?: Record<string, { format: string; file: string; external?: boolean; keys?: string[]; [k: string]: unknown }>;
  tensors: string[];
  [k: string]: any;
}

export interface Manifest {
  format?: string;
  format_version?: number;
  fixtures: Record<string, FixtureEntry>;
  tensors: Record<string, TensorEntry>;
  [k: string]: unknown;
}

export function readManifest(dir: string): Manifest {
  const path = join(dir, 'manifest.json');
  let m: Manifest;
  try {
    m = JSON.parse(readFileSync(path, 'utf8')) as Manifest;
  } catch (e) {
    throw new Error(`cannot read fixture manifest ${path}: ${(e as Error).message}`);
  }
  if (!m || typeof m.tensors !== 'object' || typeof m.fixtures !== 'object') {
    throw new Error(`${path} is not a conformance manifest: it needs 'fixtures' and 'tensors' objects`);
  }
  return m;
}
