// A safe subset of Python's unpickler (protocols 0-5) that never executes anything. Containers become JS values
// (list/tuple → array, dict/OrderedDict → Map, set → Set); a global is only "callable" when the caller registers a JS
// function for it (torch's tensor rebuild functions, OrderedDict, ...). Every other global — argparse.Namespace in DINO
// checkpoints, or os.system in a malicious file — becomes an inert PyObject recording its name and arguments.
// Untrusted input is bounded: lengths are checked against the remaining bytes, nesting depth and memo size are capped,
// and the VM is a loop (no recursion), so no input can crash or hang it.

/** A reference to a Python global that we do not execute. */
export class PyGlobal {
  constructor(
    readonly module: string,
    readonly name: string,
  ) {}
  get qualname(): string {
    return `${this.module}.${this.name}`;
  }
}

/** An object we did not rebuild: the global that would have made it, its arguments and its pickled state. */
export class PyObject {
  state: PickleValue = null;
  /** Items added with APPEND/SETITEM on an object that claims to be a list/dict subclass. */
  items: PickleValue[] = [];
  constructor(
    readonly className: string,
    readonly args: PickleValue[],
  ) {}
}

/** A global the caller allows: calling it (REDUCE/NEWOBJ) runs `fn` on the decoded arguments. */
export class PyCallable {
  constructor(
    readonly qualname: string,
    readonly fn: (args: PickleValue[]) => PickleValue,
  ) {}
}

export type PickleValue = unknown;

// Modules and callables that run code or reach the system when a pickle calls them: what malicious checkpoints use.
const CODE_MODULES = ['os', 'posix', 'nt', 'subprocess', 'sys', 'shutil', 'socket', 'importlib', 'runpy', 'pty', 'ctypes', 'marshal',
  'pickle', '_pickle', 'code', 'codeop', 'webbrowser', 'multiprocessing', 'asyncio', 'signal', 'urllib', 'http'];
const CODE_CALLABLES = new Set(['eval', 'exec', 'compile', 'getattr', 'setattr', 'delattr', '__import__', 'open', 'input', 'globals', 'locals',
  'vars', 'breakpoint', 'exit', 'quit', 'help', 'execfile', 'file', 'reload', 'apply'].flatMap((n) => [`builtins.${n}`, `__builtin__.${n}`])
  .concat(['types.FunctionType', 'types.CodeType', 'functools.partial', 'operator.attrgetter', 'operator.methodcaller', 'io.open', 'io.FileIO', 'codecs.open']));

/**
 * Whether `qualname` ('module.name') is a global that executes code or touches the system when called. A weights file
 * never needs one (PyTorch's weights_only loader refuses them too); its presence marks the file as hostile even
 * where the rest of the file is a valid state dict.
 */
export function codeExecutionGlobal(qualname: string): boolean {
  if (CODE_CALLABLES.has(qualname)) return true;
  const module = qualname.slice(0, qualname.lastIndexOf('.'));
  return CODE_MODULES.some((m) => module === m || module.startsWith(`${m}.`));
}

/** Attributes set by BUILD on a dict (e.g. the `_metadata` of a torch state_dict). */
export const dictAttributes = new WeakMap<Map<PickleValue, PickleValue>, PickleValue>();

export interface UnpickleOptions {
  /** 'module.name' → JS implementation. Everything else is inert. */
  globals?: Record<string, (args: PickleValue[]) => PickleValue>;
  /** 'module.name' → message: globals whose use is an error (e.g. formats we refuse to read). */
  refuse?: Record<string, string>;
  /** A message for a global whose mere presence refuses the whole input (e.g. codeExecutionGlobal), or null. */
  refuseGlobal?: (qualname: string) => string | null;
  persistentLoad?: (pid: PickleValue) => PickleValue;
  /** Used in error messages. */
  source?: string;
  maxDepth?: number;
}

const MAX_DEPTH_DEFAULT = 1000;
const MAX_LONG_BYTES = 1 << 16;

// Names Python 3 maps from their Python 2 spelling when reading protocol <= 2 pickles.
const COMPAT: Record<string, string> = {
  '__builtin__.set': 'builtins.set',
  '__builtin__.frozenset': 'builtins.frozenset',
  '__builtin__.object': 'builtins.object',
  'copy_reg._reconstructor': 'copyreg._reconstructor',
};

function builtinGlobals(): Record<string, (args: PickleValue[]) => PickleValue> {
  return {
    'collections.OrderedDict': (args) => {
      const m = new Map<PickleValue, PickleValue>();
      if (args.length && Array.isArray(args[0])) for (const kv of args[0]) if (Array.isArray(kv) && kv.length === 2) m.set(kv[0], kv[1]);
      return m;
    },
    'builtins.set': (args) => new Set(Array.isArray(args[0]) ? args[0] : []),
    'builtins.frozenset': (args) => new Set(Array.isArray(args[0]) ? args[0] : []),
    // bytes pickled by protocol <= 2: _codecs.encode('latin-1 text', 'latin1')
    '_codecs.encode': (args) => {
      const s = String(args[0] ?? '');
      const out = new Uint8Array(s.length);
      for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i) & 0xff;
      return out;
    },
    // object.__reduce_ex__ for protocols < 2: copyreg._reconstructor(cls, base, state) → an inert object of cls
    'copyreg._reconstructor': (args) => new PyObject(args[0] instanceof PyGlobal ? args[0].qualname : 'object', args.slice(1)),
  };
}

export function unpickle(data: Uint8Array, opts: UnpickleOptions = {}): PickleValue {
  const src = opts.source ?? 'pickle';
  const maxDepth = opts.maxDepth ?? MAX_DEPTH_DEFAULT;
  const globals = { ...builtinGlobals(), ...opts.globals };
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const latin1 = new TextDecoder('latin1');
  const utf8 = new TextDecoder('utf-8', { fatal: false });
  const stack: PickleValue[] = [];
  const marks: number[] = [];
  const memo = new Map<number, PickleValue>();
  const depth = new WeakMap<object, number>();
  let pos = 0;

  const fail = (msg: string): never => {
    throw new Error(`${src}: ${msg} (at byte ${pos})`);
  };
  const need = (n: number, what: string) => {
    if (!Number.isSafeInteger(n) || n < 0 || pos + n > data.length)
      fail(`${what} length ${n} exceeds the ${data.length - pos} bytes left (truncated or corrupt pickle)`);
  };
  const u8 = () => {
    need(1, 'opcode argument');
    return data[pos++]!;
  };
  const u16 = () => {
    need(2, 'opcode argument');
    const v = view.getUint16(pos, true);
    pos += 2;
    return v;
  };
  const u32 = () => {
    need(4, 'opcode argument');
    const v = view.getUint32(pos, true);
    pos += 4;
    return v;
  };
  const i32 = () => {
    need(4, 'opcode argument');
    const v = view.getInt32(pos, true);
    pos += 4;
    return v;
  };
  const u64 = () => {
    need(8, 'opcode argument');
    const v = view.getBigUint64(pos, true);
    pos += 8;
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) fail(`length ${v} is absurd`);
    return Number(v);
  };
  const bytes = (n: number, what: string) => {
    need(n, what);
    const b = data.subarray(pos, pos + n);
    pos += n;
    return b;
  };
  const line = () => {
    const end = data.indexOf(0x0a, pos);
    if (end < 0) fail('unterminated text line');
    const s = latin1.decode(data.subarray(pos, end));
    pos = end + 1;
    return s;
  };
  const pop = () => {
    if (stack.length === 0 || (marks.length && stack.length <= marks[marks.length - 1]!)) fail('stack underflow (corrupt pickle)');
    return stack.pop();
  };
  const top = () => {
    if (stack.length === 0) fail('stack underflow (corrupt pickle)');
    return stack[stack.length - 1];
  };
  const popMark = () => {
    const m = marks.pop();
    if (m === undefined) fail('MARK missing (corrupt pickle)');
    return stack.splice(m!);
  };
  // Nesting depth of containers, tracked as children are added, so walkers can trust the result.
  const nest = (parent: object, child: PickleValue) => {
    const d = (typeof child === 'object' && child !== null ? (depth.get(child) ?? 0) : 0) + 1;
    if (d > (depth.get(parent) ?? 0)) {
      if (d > maxDepth) fail(`containers nested deeper than ${maxDepth} (recursion bomb?)`);
      depth.set(parent, d);
    }
  };
  const asTuple = (items: PickleValue[]) => {
    const t = [...items];
    for (const x of t) nest(t, x);
    return t;
  };
  const int = (v: bigint | number) => (typeof v === 'bigint' && v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v);
  const long = (b: Uint8Array) => {
    if (b.length > MAX_LONG_BYTES) fail(`integer of ${b.length} bytes is absurd`);
    if (b.length === 0) return 0;
    let v = 0n;
    for (let i = b.length - 1; i >= 0; i--) v = (v << 8n) | BigInt(b[i]!);
    if (b[b.length - 1]! & 0x80) v -= 1n << BigInt(8 * b.length);
    return int(v);
  };
  const findGlobal = (module: string, name: string): PickleValue => {
    let q = `${module}.${name}`;
    q = COMPAT[q] ?? q;
    if (opts.refuse?.[q]) fail(opts.refuse[q]!);
    const refused = opts.refuseGlobal?.(q);
    if (refused) fail(refused);
    const fn = globals[q];
    return fn ? new PyCallable(q, fn) : new PyGlobal(module, name);
  };
  const call = (callable: PickleValue, args: PickleValue): PickleValue => {
    const a = Array.isArray(args) ? args : [args];
    if (callable instanceof PyCallable) return callable.fn(a);
    if (callable instanceof PyGlobal) return new PyObject(callable.qualname, a);
    if (callable instanceof PyObject) return new PyObject(`${callable.className}(...)`, a);
    return fail(`cannot call a ${typeof callable} (corrupt pickle)`);
  };
  const setItem = (target: PickleValue, k: PickleValue, v: PickleValue) => {
    if (target instanceof Map) {
      target.set(k, v);
      nest(target, v);
    } else if (target instanceof PyObject) target.items.push([k, v]);
    else fail('SETITEM on a non-dict');
  };
  const append = (target: PickleValue, v: PickleValue) => {
    if (Array.isArray(target)) {
      target.push(v);
      nest(target, v);
    } else if (target instanceof PyObject) target.items.push(v);
    else fail('APPEND on a non-list');
  };
  const put = (i: number, v: PickleValue) => {
    if (memo.size > data.length) fail('memo larger than the pickle (corrupt)');
    memo.set(i, v);
  };
  const get = (i: number) => {
    if (!memo.has(i)) fail(`memo key ${i} missing (corrupt pickle)`);
    return memo.get(i);
  };
  const persistent = (pid: PickleValue) => {
    if (!opts.persistentLoad) fail('persistent id found but no persistent_load is available');
    return opts.persistentLoad!(pid);
  };
  const pyStringLiteral = (s: string) => {
    const q = s[0];
    if ((q !== "'" && q !== '"') || s[s.length - 1] !== q) fail('bad STRING literal');
    return s.slice(1, -1).replace(/\\(x[0-9a-fA-F]{2}|.)/g, (_m, e: string) =>
      e[0] === 'x' ? String.fromCharCode(parseInt(e.slice(1), 16)) : ({ n: '\n', r: '\r', t: '\t', '\\': '\\', "'": "'", '"': '"' } as Record<string, string>)[e] ?? e,
    );
  };

  for (;;) {
    if (pos >= data.length) fail('pickle ended without STOP (truncated)');
    const op = data[pos++]!;
    switch (op) {
      case 0x80: {
        const proto = u8();
        if (proto > 5) fail(`unsupported pickle protocol ${proto}`);
        break;
      }
      case 0x95: // FRAME: a length hint only
        u64();
        break;
      case 0x2e: // STOP
        if (stack.length !== 1 || marks.length) fail(`STOP with ${stack.length} values on the stack (corrupt pickle)`);
        return stack[0];
      case 0x28: // MARK
        marks.push(stack.length);
        break;
      case 0x30: // POP
        if (marks.length && marks[marks.length - 1] === stack.length) marks.pop();
        else pop();
        break;
      case 0x31: // POP_MARK
        popMark();
        break;
      case 0x32: // DUP
        stack.push(top());
        break;
      case 0x4e: // NONE
        stack.push(null);
        break;
      case 0x88: // NEWTRUE
        stack.push(true);
        break;
      case 0x89: // NEWFALSE
        stack.push(false);
        break;
      case 0x4a: // BININT
        stack.push(i32());
        break;
      case 0x4b: // BININT1
        stack.push(u8());
        break;
      case 0x4d: // BININT2
        stack.push(u16());
        break;
      case 0x8a: // LONG1
        stack.push(long(bytes(u8(), 'LONG1')));
        break;
      case 0x8b: {
        // LONG4
        const n = i32();
        stack.push(long(bytes(n, 'LONG4')));
        break;
      }
      case 0x49: {
        // INT (text)
        const s = line().trim();
        if (s === '00') stack.push(false);
        else if (s === '01') stack.push(true);
        else if (/^[+-]?\d+$/.test(s)) stack.push(int(BigInt(s)));
        else fail(`bad INT ${JSON.stringify(s.slice(0, 40))}`);
        break;
      }
      case 0x4c: {
        // LONG (text)
        const s = line().trim().replace(/L$/, '');
        if (!/^[+-]?\d+$/.test(s) || s.length > MAX_LONG_BYTES) fail('bad LONG');
        stack.push(int(BigInt(s)));
        break;
      }
      case 0x46: // FLOAT (text)
        stack.push(parseFloat(line()));
        break;
      case 0x47: {
        // BINFLOAT (big-endian)
        need(8, 'BINFLOAT');
        stack.push(view.getFloat64(pos, false));
        pos += 8;
        break;
      }
      case 0x58: // BINUNICODE
        stack.push(utf8.decode(bytes(u32(), 'BINUNICODE')));
        break;
      case 0x8c: // SHORT_BINUNICODE
        stack.push(utf8.decode(bytes(u8(), 'SHORT_BINUNICODE')));
        break;
      case 0x8d: // BINUNICODE8
        stack.push(utf8.decode(bytes(u64(), 'BINUNICODE8')));
        break;
      case 0x56: // UNICODE (text, raw-unicode-escape)
        stack.push(line().replace(/\\u([0-9a-fA-F]{4})/g, (_m, h: string) => String.fromCharCode(parseInt(h, 16))));
        break;
      case 0x54: // BINSTRING (Python 2 str, read as latin-1 text)
        stack.push(latin1.decode(bytes(i32(), 'BINSTRING')));
        break;
      case 0x55: // SHORT_BINSTRING
        stack.push(latin1.decode(bytes(u8(), 'SHORT_BINSTRING')));
        break;
      case 0x53: // STRING (text repr)
        stack.push(pyStringLiteral(line().trim()));
        break;
      case 0x42: // BINBYTES
        stack.push(bytes(u32(), 'BINBYTES').slice());
        break;
      case 0x43: // SHORT_BINBYTES
        stack.push(bytes(u8(), 'SHORT_BINBYTES').slice());
        break;
      case 0x8e: // BINBYTES8
        stack.push(bytes(u64(), 'BINBYTES8').slice());
        break;
      case 0x96: // BYTEARRAY8
        stack.push(bytes(u64(), 'BYTEARRAY8').slice());
        break;
      case 0x5d: // EMPTY_LIST
        stack.push([]);
        break;
      case 0x61: {
        // APPEND
        const v = pop();
        append(top(), v);
        break;
      }
      case 0x65: {
        // APPENDS
        const items = popMark();
        const target = top();
        for (const v of items) append(target, v);
        break;
      }
      case 0x6c: // LIST
        stack.push(asTuple(popMark()));
        break;
      case 0x29: // EMPTY_TUPLE
        stack.push([]);
        break;
      case 0x74: // TUPLE
        stack.push(asTuple(popMark()));
        break;
      case 0x85: // TUPLE1
        stack.push(asTuple([pop()]));
        break;
      case 0x86: {
        // TUPLE2
        const b = pop();
        const a = pop();
        stack.push(asTuple([a, b]));
        break;
      }
      case 0x87: {
        // TUPLE3
        const c = pop();
        const b = pop();
        const a = pop();
        stack.push(asTuple([a, b, c]));
        break;
      }
      case 0x7d: // EMPTY_DICT
        stack.push(new Map());
        break;
      case 0x64: {
        // DICT
        const items = popMark();
        if (items.length % 2) fail('DICT with an odd number of items');
        const m = new Map<PickleValue, PickleValue>();
        for (let i = 0; i < items.length; i += 2) setItem(m, items[i], items[i + 1]);
        stack.push(m);
        break;
      }
      case 0x73: {
        // SETITEM
        const v = pop();
        const k = pop();
        setItem(top(), k, v);
        break;
      }
      case 0x75: {
        // SETITEMS
        const items = popMark();
        if (items.length % 2) fail('SETITEMS with an odd number of items');
        const target = top();
        for (let i = 0; i < items.length; i += 2) setItem(target, items[i], items[i + 1]);
        break;
      }
      case 0x8f: // EMPTY_SET
        stack.push(new Set());
        break;
      case 0x90: {
        // ADDITEMS
        const items = popMark();
        const target = top();
        if (!(target instanceof Set)) fail('ADDITEMS on a non-set');
        for (const v of items) (target as Set<PickleValue>).add(v);
        break;
      }
      case 0x91: // FROZENSET
        stack.push(new Set(popMark()));
        break;
      case 0x63: {
        // GLOBAL "module\nname\n"
        const module = line();
        const name = line();
        stack.push(findGlobal(module, name));
        break;
      }
      case 0x93: {
        // STACK_GLOBAL
        const name = pop();
        const module = pop();
        if (typeof module !== 'string' || typeof name !== 'string') fail('STACK_GLOBAL needs two strings');
        stack.push(findGlobal(module as string, name as string));
        break;
      }
      case 0x52: {
        // REDUCE
        const args = pop();
        const callable = pop();
        stack.push(call(callable, args));
        break;
      }
      case 0x81: {
        // NEWOBJ cls.__new__(cls, *args)
        const args = pop();
        const cls = pop();
        stack.push(call(cls, args));
        break;
      }
      case 0x92: {
        // NEWOBJ_EX
        const kwargs = pop();
        const args = pop();
        const cls = pop();
        const o = call(cls, args);
        if (o instanceof PyObject) o.state = kwargs;
        stack.push(o);
        break;
      }
      case 0x62: {
        // BUILD: obj.__setstate__(state) — recorded, never executed
        const state = pop();
        const obj = top();
        if (obj instanceof PyObject) obj.state = state;
        else if (obj instanceof Map) dictAttributes.set(obj, state);
        break;
      }
      case 0x6f: {
        // OBJ: MARK cls args... → inert instance
        const items = popMark();
        if (!items.length) fail('OBJ without a class');
        stack.push(call(items[0], items.slice(1)));
        break;
      }
      case 0x69: {
        // INST "module\nname\n": MARK args... → inert instance
        const module = line();
        const name = line();
        const args = popMark();
        stack.push(call(findGlobal(module, name), args));
        break;
      }
      case 0x70: // PUT (text)
        put(parseInt(line(), 10), top());
        break;
      case 0x71: // BINPUT
        put(u8(), top());
        break;
      case 0x72: // LONG_BINPUT
        put(u32(), top());
        break;
      case 0x94: // MEMOIZE
        put(memo.size, top());
        break;
      case 0x67: // GET (text)
        stack.push(get(parseInt(line(), 10)));
        break;
      case 0x68: // BINGET
        stack.push(get(u8()));
        break;
      case 0x6a: // LONG_BINGET
        stack.push(get(u32()));
        break;
      case 0x50: // PERSID (text)
        stack.push(persistent(line()));
        break;
      case 0x51: // BINPERSID
        stack.push(persistent(pop()));
        break;
      case 0x82:
      case 0x83:
      case 0x84:
        fail('pickle extension registry opcodes (EXT1/2/4) are not supported');
        break;
      case 0x97:
      case 0x98:
        fail('out-of-band pickle buffers are not supported');
        break;
      default:
        fail(`unknown pickle opcode 0x${op.toString(16)} (corrupt file?)`);
    }
  }
}
