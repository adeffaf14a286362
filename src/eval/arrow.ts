// Feature tables as Apache Arrow IPC files (readable by pyarrow, polars, DuckDB):
// columns path (utf8), label (int32, -1 = none), index (int32), feature (FixedSizeList<float32>[F]).
import { readFileSync, writeFileSync } from 'node:fs';
import {
  Field,
  FixedSizeList,
  Float32,
  Int32,
  makeData,
  RecordBatch,
  RecordBatchFileWriter,
  Schema,
  Struct,
  tableFromIPC,
  Utf8,
  vectorFromArray,
} from 'apache-arrow';
import type { FeatureMeta, FeatureSet } from './extract.js';

export function writeArrowFeatures(path: string, set: FeatureSet): void {
  const { rows: n, cols: dim, data } = set.features;
  const f32 = new Float32();
  const listType = new FixedSizeList(dim, new Field('item', f32, false));
  const schema = new Schema(
    [new Field('path', new Utf8(), false), new Field('label', new Int32(), false), new Field('index', new Int32(), false), new Field('feature', listType, false)],
    new Map([
      ['features', set.meta.features],
      ['model', set.meta.model],
      ['dataset', set.meta.dataset],
    ]),
  );
  const children = [
    vectorFromArray(set.paths, new Utf8()).data[0]!,
    makeData({ type: new Int32(), length: n, data: set.labels }),
    makeData({ type: new Int32(), length: n, data: set.indices }),
    makeData({ type: listType, length: n, nullCount: 0, child: makeData({ type: f32, length: n * dim, data }) }),
  ];
  const batch = new RecordBatch(schema, makeData({ type: new Struct(schema.fields), length: n, nullCount: 0, children }));
  writeFileSync(path, RecordBatchFileWriter.writeAll([batch]).toUint8Array(true));
}

export function readArrowFeatures(path: string, meta: FeatureMeta): FeatureSet {
  const table = tableFromIPC(readFileSync(path));
  const col = (name: string) => {
    const c = table.getChild(name);
    if (!c) throw new Error(`${path}: no '${name}' column (not written by dinots extract?)`);
    return c;
  };
  const n = table.numRows;
  const feat = col('feature');
  const dim = (feat.type as FixedSizeList).listSize;
  const data = new Float32Array(n * dim);
  let o = 0;
  for (const d of feat.data) {
    const child = d.children[0]!;
    const vals = (child.values as Float32Array).subarray((child.offset + d.offset * dim), (child.offset + (d.offset + d.length) * dim));
    data.set(vals, o);
    o += vals.length;
  }
  return {
    features: { data, rows: n, cols: dim },
    labels: Int32Array.from(col('label').toArray() as Int32Array),
    indices: Int32Array.from(col('index').toArray() as Int32Array),
    paths: Array.from(col('path').toArray() as string[]),
    meta,
  };
}
