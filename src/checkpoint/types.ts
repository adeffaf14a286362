// Host-side tensors as read from or written to checkpoint files (no TF.js involved).
export type DType = 'float32' | 'float16' | 'bfloat16' | 'float64' | 'int64' | 'int32' | 'int16' | 'int8' | 'uint8' | 'bool';

export type HostData = Float32Array | Float64Array | BigInt64Array | Int32Array | Int16Array | Int8Array | Uint8Array;

export interface HostTensor {
  /** Element type of `data` as stored here. float16/bfloat16 files are widened to float32 on read; `sourceDtype` keeps the original. */
  dtype: DType;
  shape: number[];
  data: HostData;
  sourceDtype?: DType;
}

/** An ordered name → tensor map, like a PyTorch state_dict. */
export type StateDict = Map<string, HostTensor>;
