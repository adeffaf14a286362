// Arrow IPC tables in the curation work folder: strings, numbers, booleans and fixed-size float32 vectors.
import { readFileSync, writeFileSync, renameSync } from 'node:fs';
import {
  Bool,
  Field,
  FixedSizeList,
  Float32,
  Table,
  Utf8,
  makeData,
  makeVector,
  tableFromIPC,
  tableToIPC,
  vectorFromArray,
  type Vector,
} from 'apache-arrow';
import { type Matrix, makeMatrix } from '../util/matrix.js';

export type Column = string[] | Int32Array | Float32Array | boolean[] | Matrix;

function isMatrix(c: Column): c is Matrix {
  return typeof c === 'object' && c !== null && 'rows' in c && 'cols' in c && 'data' in c;
}

function toVector(name: string, c: Column): Vector {
  if (isMatrix(c)) {
    const child = makeData({ type: new Float32(), length: c.rows * c.cols, data: c.data.subarray(0, c.rows * c.cols) });
    const type = new FixedSizeList(c.cols, new Field('item', new Float32(), false));
    return makeVector(makeData({ type, length: c.rows, nullCount: 0, child }));
  }
  if (c instanceof Int32Array) return makeVector(c);
  if (c instanceof Float32Array) return makeVector(c);
  if (c.length > 0 && typeof c[0] === 'boolean') return vectorFromArray(c as boolean[], new Bool());
  if (c.length === 0 || typeof c[0] === 'string') return vectorFromArray(c as string[], new Utf8());
  throw new Error(`table column '${name}': unsupported type`);
}

/** Writes the columns (all the same length) as an Arrow IPC file, atomically (temp file + rename). */
export function writeTable(path: string, columns: Record<string, Column>): void {
  const lengths = Object.entries(columns).map(([n, c]) => [n, isMatrix(c) ? c.rows : c.length] as const);
  if (new Set(lengths.map(([, l]) => l)).size > 1) {
    throw new Error(`table ${path}: columns differ in length (${lengths.map(([n, l]) => `${n}=${l}`).join(', ')})`);
  }
  const vectors: Record<string, Vector> = {};
  for (const [n, c] of Object.entries(columns)) vectors[n] = toVector(n, c);
  const table = new Table(vectors);
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, tableToIPC(table, 'file'));
  renameSync(tmp, path);
}

export class TableReader {
  readonly table: Table;
  constructor(readonly path: string) {
    try {
      this.table = tableFromIPC(readFileSync(path));
    } catch (e) {
      throw new Error(`cannot read Arrow table ${path}: ${(e as Error).message} (re-run the step that writes it)`);
    }
  }

  get numRows(): number {
    return this.table.numRows;
  }

  private column(name: string) {
    const col = this.table.getChild(name);
    if (!col) throw new Error(`${this.path} has no column '${name}' (columns: ${this.table.schema.fields.map((f) => f.name).join(', ')})`);
    return col;
  }

  strings(name: string): string[] {
    return Array.from(this.column(name).toArray() as ArrayLike<string>);
  }

  int32(name: string): Int32Array {
    return Int32Array.from(this.column(name).toArray() as ArrayLike<number>);
  }

  float32(name: string): Float32Array {
    return Float32Array.from(this.column(name).toArray() as ArrayLike<number>);
  }

  bools(name: string): boolean[] {
    return Array.from(this.column(name).toArray() as ArrayLike<boolean>);
  }

  /** A FixedSizeList<float32> column as one matrix (chunks concatenated). */
  matrix(name: string): Matrix {
    const col = this.column(name);
    const type = col.type as FixedSizeList;
    const cols = type.listSize;
    const out = makeMatrix(col.length, cols);
    let at = 0;
    for (const chunk of col.data) {
      const values = chunk.children[0]!.values as Float32Array;
      const start = chunk.offset * cols;
      out.data.set(values.subarray(start, start + chunk.length * cols), at);
      at += chunk.length * cols;
    }
    return out;
  }
}

export function readTable(path: string): TableReader {
  return new TableReader(path);
}

