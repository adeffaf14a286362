// PyTorch .pth/.pt files (torch.save's zip container, PyTorch >= 1.6): `<archive>/data.pkl` is a pickle whose
// persistent ids name storages stored raw in `<archive>/data/<key>`; `torch._utils._rebuild_tensor_v2` turns a storage,
// offset, size and stride into a tensor. We rebuild tensors and containers and nothing else (see pickle.ts).
import { closeSync, openSync, readSync } from 'node:fs';
import { decodeBytes, DTYPE_BYTES, hostDtype, numel } from './dtypes.js';
import { codeExecutionGlobal, PyGlobal, PyObject, unpickle, type PickleValue } from './pickle.js';
import type { DType, HostData, HostTensor, StateDict } from './types.js';
import { ZipReader } from './zip.js';

const STORAGE_DTYPES: Record<string, DType> = {
  FloatStorage: 'float32',
  HalfStorage: 'float16',
  BFloat16Storage: 'bfloat16',
  DoubleStorage: 'float64',
  LongStorage: 'int64',
  IntStorage: 'int32',
  ShortStorage: 'int16',
  CharStorage: 'int8',
  ByteStorage: 'uint8',
  BoolStorage: 'bool',
  UntypedStorage: 'uint8',
};

const LEGACY_MAGIC = [0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19];

/** A storage named by a persistent id; its bytes are read when the first tensor needs them. */
class TorchStorage {
  data: HostData | null = null;
  /** Whether one tensor already owns `data` without a copy (the next full view copies). */
  lent = false;
  constructor(
    readonly key: string,
    readonly dtype: DType,
    readonly numel: number,
  ) {}
}

export interface PthFile {
  /** The unpickled object: Map for dicts, arrays for lists/tuples, HostTensor for tensors, PyObject for the rest. */
  value: PickleValue;
  archive: string;
  byteorder: 'little' | 'big';
}

export function isHostTensor(v: unknown): v is HostTensor {
  return typeof v === 'object' && v !== null && 'dtype' in v && 'shape' in v && 'data' in v && ArrayBuffer.isView((v as HostTensor).data);
}

function checkNotLegacy(path: string): void {
  const fd = openSync(path, 'r');
  const head = new Uint8Array(16);
  try {
    readSync(fd, head, 0, 16, 0);
  } finally {
    closeSync(fd);
  }
  if (head[0] === 0x50 && head[1] === 0x4b) return; // 'PK': zip
  const legacy = head[0] === 0x80 && head[2] === 0x8a && LEGACY_MAGIC.every((b, i) => head[4 + i] === b);
  throw new Error(
      legacy
        ? `${path}: legacy torch.save format (PyTorch < 1.6 or _use_new_zipfile_serialization=False) is not supported; ` +
            `re-save it with torch>=1.6: python -c "import torch; torch.save(torch.load('${path}'), 'new.pth')"`
        : `${path}: not a PyTorch zip checkpoint (no 'PK' zip signature); expected a file written by torch.save with torch>=1.6`,
    );
}

function byteswap(bytes: Uint8Array, size: number): void {
  for (let i = 0; i < bytes.length; i += size)
    for (let a = i, b = i + size - 1; a < b; a++, b--) {
      const t = bytes[a]!;
      bytes[a] = bytes[b]!;
      bytes[b] = t;
    }
}

function intList(v: PickleValue, what: string, path: string): number[] {
  if (!Array.isArray(v) || !v.every((x) => typeof x === 'number' && Number.isSafeInteger(x) && x >= 0))
    throw new Error(`${path}: tensor ${what} must be a tuple of non-negative ints, got ${String(v)}`);
  return v as number[];
}

/** Reads a torch.save zip file into a generic object tree (see PthFile). Nothing in the file is executed. */
export function readPth(path: string): PthFile {
  checkNotLegacy(path);
  const zip = new ZipReader(path);
  try {
    const pkls = [...zip.entries.keys()].filter((n) => /^[^/]+\/data\.pkl$/.test(n));
    if (pkls.length !== 1) throw new Error(`${path}: expected one '<archive>/data.pkl' in the zip, found ${pkls.length} (not a torch.save file?)`);
    const archive = pkls[0]!.slice(0, -'/data.pkl'.length);
    const bo = zip.entries.has(`${archive}/byteorder`) ? new TextDecoder().decode(zip.read(`${archive}/byteorder`)).trim() : 'little';
    if (bo !== 'little' && bo !== 'big') throw new Error(`${path}: unknown byteorder '${bo}'`);
    const storages = new Map<string, TorchStorage>();

    const loadStorage = (s: TorchStorage): HostData => {
      if (s.data) return s.data;
      const name = `${archive}/data/${s.key}`;
      const entry = zip.entries.get(name);
      if (!entry) throw new Error(`${path}: storage record '${name}' is missing`);
      const nbytes = s.numel * DTYPE_BYTES[s.dtype];
      if (entry.size < nbytes) throw new Error(`${path}: storage '${name}' has ${entry.size} bytes, needs ${nbytes} for ${s.numel} ${s.dtype}`);
      // torch.save stores records uncompressed. A compressed record must inflate to exactly what the storage needs:
      // a small deflate stream may declare gigabytes, and the reader never inflates more than the tensors use.
      if (entry.method !== 0 && entry.size !== nbytes) {
        throw new Error(`${path}: compressed storage record '${name}' declares ${entry.size} bytes but its storage needs ${nbytes} (${s.numel} ${s.dtype}): refused (re-save the file with torch.save)`);
      }
      let bytes = zip.read(name);
      if (bytes.byteLength !== nbytes) bytes = bytes.slice(0, nbytes);
      if (bo === 'big' && DTYPE_BYTES[s.dtype] > 1) byteswap(bytes, DTYPE_BYTES[s.dtype]);
      s.data = decodeBytes(bytes, s.dtype, true);
      return s.data;
    };

    const rebuildTensor = (args: PickleValue[]): HostTensor => {
      const [storage, offset, sizeV, strideV] = args;
      if (!(storage instanceof TorchStorage)) throw new Error(`${path}: _rebuild_tensor_v2 without a storage`);
      if (typeof offset !== 'number' || !Number.isSafeInteger(offset) || offset < 0) throw new Error(`${path}: bad storage offset ${String(offset)}`);
      const shape = intList(sizeV, 'size', path);
      const stride = intList(strideV, 'stride', path);
      if (stride.length !== shape.length) throw new Error(`${path}: tensor size and stride lengths differ`);
      const n = numel(shape);
      // Expanded views (stride 0) may legitimately hold more elements than their storage, but not unboundedly.
      if (n > Math.max(16 * storage.numel, 1 << 20))
        throw new Error(`${path}: tensor [${shape}] of ${n} elements from a storage of ${storage.numel} refused (corrupt or hostile strides)`);
      const last = n === 0 ? offset : offset + shape.reduce((s, d, i) => s + (d - 1) * stride[i]!, 0);
      if (n > 0 && last >= storage.numel)
        throw new Error(`${path}: tensor [${shape}] at offset ${offset} with stride [${stride}] reads past its storage of ${storage.numel} elements`);
      const src = loadStorage(storage);
      const t: HostTensor = { dtype: hostDtype(storage.dtype), shape, data: gather(src, offset, shape, stride, n) };
      if (t.dtype !== storage.dtype) t.sourceDtype = storage.dtype;
      // A tensor covering its whole storage contiguously gets the storage itself (no copy) — once; later views copy.
      if (t.data === src) {
        if (storage.lent) t.data = src.slice() as HostData;
        storage.lent = true;
      }
      return t;
    };

    const value = unpickle(zip.read(pkls[0]!), {
      source: `${path} (${pkls[0]})`,
      persistentLoad: (pid) => {
        if (!Array.isArray(pid) || pid[0] !== 'storage' || pid.length < 5) throw new Error(`${path}: unknown persistent id ${String(pid)}`);
        const [, type, key, , count] = pid;
        const typeName = type instanceof PyGlobal ? type.name : String(type);
        const dtype = STORAGE_DTYPES[typeName];
        if (!dtype) throw new Error(`${path}: unsupported storage type '${typeName}'`);
        if (typeof key !== 'string' || typeof count !== 'number' || !Number.isSafeInteger(count) || count < 0)
          throw new Error(`${path}: malformed storage persistent id`);
        let s = storages.get(key);
        if (!s) {
          const entry = zip.entries.get(`${archive}/data/${key}`);
          // UntypedStorage counts bytes; typed storages count elements
          if (entry && count * DTYPE_BYTES[dtype] > entry.size)
            throw new Error(`${path}: storage '${key}' claims ${count} ${dtype} elements but its record has ${entry.size} bytes`);
          s = new TorchStorage(key, dtype, count);
          storages.set(key, s);
        }
        return s;
      },
      globals: {
        'torch._utils._rebuild_tensor_v2': rebuildTensor,
        'torch._utils._rebuild_tensor': rebuildTensor,
        'torch._utils._rebuild_parameter': (a) => a[0],
        'torch._utils._rebuild_parameter_with_state': (a) => a[0],
        'torch.Size': (a) => (Array.isArray(a[0]) ? a[0] : []),
        'torch.device': (a) => String(a[0]),
      },
      refuse: {
        'torch.storage._load_from_bytes': `${path}: contains a storage pickled in the legacy format (torch.storage._load_from_bytes); re-save it with torch>=1.6`,
      },
      // Inert either way, but a file that calls os.system & co. beside its tensors is hostile: refuse it whole.
      refuseGlobal: (q) => (codeExecutionGlobal(q)
        ? `${path}: refers to the Python global '${q}', which runs code or reaches the system; a weights file never needs it (PyTorch's weights_only loader refuses it too). Not loaded: get the checkpoint from a source you trust.`
        : null),
    });
    return { value, archive, byteorder: bo };
  } finally {
    zip.close();
  }
}

/** Elements of a strided view, as a new array (or `src` itself when the view is the whole storage, contiguous). */
function gather(src: HostData, offset: number, shape: number[], stride: number[], n: number): HostData {
  const contiguous = shape.every((_, i) => shape[i] === 1 || stride[i] === shape.slice(i + 1).reduce((a, b) => a * b, 1));
  if (contiguous) return offset === 0 && n === src.length ? src : (src.slice(offset, offset + n) as HostData);
  const out = new (src.constructor as new (n: number) => HostData)(n);
  const idx = new Array<number>(shape.length).fill(0);
  let p = offset;
  for (let i = 0; i < n; i++) {
    (out as Float32Array)[i] = (src as Float32Array)[p]!;
    for (let d = shape.length - 1; d >= 0; d--) {
      if (++idx[d]! < shape[d]!) {
        p += stride[d]!;
        break;
      }
      p -= (shape[d]! - 1) * stride[d]!;
      idx[d] = 0;
    }
  }
  return out;
}

const STATE_DICT_KEYS = ['model', 'state_dict', 'model_state_dict', 'module', 'net', 'network', 'backbone'];

export interface ExtractedStateDict {
  stateDict: StateDict;
  /** Keys followed from the top level, e.g. ['teacher']. */
  path: string[];
  /** Prefix stripped from every key ('module.' from DDP), or ''. */
  strippedPrefix: string;
}

/**
 * Finds the state dict in a loaded checkpoint: the object itself when it maps names to tensors, else under
 * `teacher`/`student` (`prefer` first; teacher by default as in DINO's eval scripts), `model`, `state_dict`, ...
 * A `module.` prefix shared by every key (DistributedDataParallel) is stripped.
 */
export function extractStateDict(obj: PickleValue, opts: { prefer?: 'teacher' | 'student'; source?: string } = {}): ExtractedStateDict {
  const prefer = opts.prefer ?? 'teacher';
  const order = [prefer, prefer === 'teacher' ? 'student' : 'teacher', ...STATE_DICT_KEYS];
  const src = opts.source ?? 'checkpoint';
  const path: string[] = [];
  let cur = obj;
  for (let level = 0; level < 4; level++) {
    if (!(cur instanceof Map)) break;
    const tensors: StateDict = new Map();
    for (const [k, v] of cur) if (typeof k === 'string' && isHostTensor(v)) tensors.set(k, v);
    if (tensors.size > 0 && tensors.size >= cur.size / 2) return { ...stripModule(tensors), path };
    const next = order.find((k) => cur instanceof Map && cur.get(k) instanceof Map);
    if (!next) break;
    path.push(next);
    cur = cur.get(next);
  }
  const keys = cur instanceof Map ? [...cur.keys()].map(String).slice(0, 20).join(', ') : describeValue(cur);
  throw new Error(`${src}: no state dict (name → tensor map) found${path.length ? ` under '${path.join('.')}'` : ''}; top-level keys: ${keys}`);
}

function stripModule(sd: StateDict): { stateDict: StateDict; strippedPrefix: string } {
  const keys = [...sd.keys()];
  if (!keys.every((k) => k.startsWith('module.'))) return { stateDict: sd, strippedPrefix: '' };
  return { stateDict: new Map([...sd].map(([k, v]) => [k.slice('module.'.length), v])), strippedPrefix: 'module.' };
}

/** A one-line description of a pickled value (for `info` and errors). */
export function describeValue(v: PickleValue): string {
  if (v === null) return 'None';
  if (isHostTensor(v)) return `tensor ${v.sourceDtype ?? v.dtype} [${v.shape.join(', ')}]`;
  if (v instanceof PyObject) return `<${v.className} (not rebuilt)>`;
  if (v instanceof PyGlobal) return `<global ${v.qualname}>`;
  if (v instanceof Map) return `dict(${v.size})`;
  if (Array.isArray(v)) return `list(${v.length})`;
  if (v instanceof Set) return `set(${v.size})`;
  if (v instanceof Uint8Array) return `bytes(${v.length})`;
  if (typeof v === 'string') return JSON.stringify(v.length > 60 ? `${v.slice(0, 57)}...` : v);
  return String(v);
}
