// The YAML subset of the official DINOv2 configs (ssl_default_config.yaml, train/*.yaml): nested maps by indentation,
// block lists ("- item"), flow lists ("[0.32, 1.0]"), scalars (numbers such as 1.0e-05, true/false, null, plain or
// quoted strings) and '#' comments. Anchors, multi-line strings and flow maps are not supported and are reported.
//
//   parseYamlSubset(text, 'vitl14.yaml') -> plain object
//   mergeConfig(base, over)              -> deep merge (maps merge, everything else is replaced), like OmegaConf.merge
import { readFileSync } from 'node:fs';

export type YamlValue = number | boolean | string | null | YamlValue[] | { [k: string]: YamlValue };
export type YamlMap = { [k: string]: YamlValue };

interface Line {
  indent: number;
  text: string;
  no: number;
}

function stripComment(s: string): string {
  let quote: string | null = null;
  for (let i = 0; i < s.length; i++) {
    const c = s[i]!;
    if (quote) {
      if (c === quote) quote = null;
    } else if (c === '"' || c === "'") quote = c;
    else if (c === '#' && (i === 0 || /\s/.test(s[i - 1]!))) return s.slice(0, i);
  }
  return s;
}

export function parseScalar(raw: string, where = ''): YamlValue {
  const s = raw.trim();
  if (s === '' || s === '~' || s === 'null' || s === 'Null' || s === 'NULL') return null;
  if (s === 'true' || s === 'True' || s === 'TRUE') return true;
  if (s === 'false' || s === 'False' || s === 'FALSE') return false;
  if ((s.startsWith('"') && s.endsWith('"')) || (s.startsWith("'") && s.endsWith("'"))) return s.slice(1, -1);
  if (s.startsWith('[')) {
    if (!s.endsWith(']')) throw new Error(`${where}: unterminated flow list '${s}'`);
    const inner = s.slice(1, -1).trim();
    return inner === '' ? [] : inner.split(',').map((p) => parseScalar(p, where));
  }
  if (s.startsWith('{') || s.startsWith('&') || s.startsWith('*') || s.startsWith('|') || s.startsWith('>')) {
    throw new Error(`${where}: '${s}' uses YAML features outside the supported subset (flow maps, anchors, block strings)`);
  }
  if (/^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(s)) return Number(s);
  if (/^[-+]?\.?(inf|Inf|INF)$/.test(s)) return s.startsWith('-') ? -Infinity : Infinity;
  return s;
}

export function parseYamlSubset(text: string, source = 'config'): YamlMap {
  const lines: Line[] = [];
  text.split(/\r?\n/).forEach((l, i) => {
    if (/^\s*\t/.test(l)) throw new Error(`${source}:${i + 1}: tabs are not allowed for indentation`);
    const body = stripComment(l).replace(/\s+$/, '');
    if (body.trim() === '' || body.trim() === '---') return;
    lines.push({ indent: body.length - body.trimStart().length, text: body.trim(), no: i + 1 });
  });
  let pos = 0;

  const block = (indent: number): YamlValue => {
    const first = lines[pos];
    if (!first || first.indent < indent) return null;
    if (first.text.startsWith('- ') || first.text === '-') {
      const out: YamlValue[] = [];
      while (pos < lines.length && lines[pos]!.indent === first.indent && lines[pos]!.text.startsWith('-')) {
        const l = lines[pos++]!;
        const rest = l.text.slice(1).trim();
        if (rest === '') out.push(block(first.indent + 1));
        else if (/^[^"'[]+?:(\s|$)/.test(rest)) throw new Error(`${source}:${l.no}: maps inside lists are not supported`);
        else out.push(parseScalar(rest, `${source}:${l.no}`));
      }
      return out;
    }
    const out: YamlMap = {};
    while (pos < lines.length && lines[pos]!.indent >= first.indent) {
      const l = lines[pos]!;
      if (l.indent > first.indent) throw new Error(`${source}:${l.no}: unexpected indentation`);
      const m = /^("[^"]*"|'[^']*'|[^:]+?):(\s+(.*))?$/.exec(l.text);
      if (!m) throw new Error(`${source}:${l.no}: expected 'key: value', got '${l.text}'`);
      const key = m[1]!.replace(/^["']|["']$/g, '');
      pos++;
      const value = m[3];
      if (value !== undefined && value !== '') out[key] = parseScalar(value, `${source}:${l.no}`);
      else if (pos < lines.length && (lines[pos]!.indent > l.indent || (lines[pos]!.indent === l.indent && lines[pos]!.text.startsWith('-')))) {
        out[key] = block(lines[pos]!.indent);
      } else out[key] = null;
    }
    return out;
  };
  const root = block(0);
  if (pos < lines.length) throw new Error(`${source}:${lines[pos]!.no}: unexpected content '${lines[pos]!.text}'`);
  if (root === null) return {};
  if (Array.isArray(root) || typeof root !== 'object') throw new Error(`${source}: the top level must be a map of sections`);
  return root;
}

export function readYamlConfig(path: string): YamlMap {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new Error(`--config ${path}: cannot read the file (${(e as Error).message})`);
  }
  return path.endsWith('.json') ? (JSON.parse(text) as YamlMap) : parseYamlSubset(text, path);
}

function isMap(v: unknown): v is YamlMap {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** OmegaConf-style merge: nested maps merge key by key; lists and scalars in `over` replace. Returns a new object. */
export function mergeConfig<T>(base: T, over: unknown): T {
  if (!isMap(over)) return (over === undefined ? base : over) as T;
  if (!isMap(base)) return structuredClone(over) as T;
  const out: YamlMap = structuredClone(base as YamlMap);
  for (const [k, v] of Object.entries(over)) out[k] = isMap(v) && isMap(out[k]) ? mergeConfig(out[k], v) : structuredClone(v);
  return out as T;
}

/** 'optim.base_lr=0.001' style overrides (value parsed as a YAML scalar) as a nested map. */
export function dottedOverrides(pairs: string[]): YamlMap {
  const out: YamlMap = {};
  for (const p of pairs) {
    const eq = p.indexOf('=');
    if (eq <= 0) throw new Error(`--set '${p}': expected section.key=value (e.g. optim.base_lr=0.001)`);
    const path = p.slice(0, eq).split('.');
    let node = out;
    for (const k of path.slice(0, -1)) node = (isMap(node[k]) ? node[k] : (node[k] = {})) as YamlMap;
    node[path[path.length - 1]!] = parseScalar(p.slice(eq + 1), `--set ${p}`);
  }
  return out;
}
