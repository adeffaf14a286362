// The option value parsers of every dinots command (commander calls them with the raw string; errors name the flag).

/** A finite number. */
export function number(flag: string): (v: string) => number {
  return (v) => {
    const n = Number(v);
    if (!Number.isFinite(n)) throw new Error(`${flag} expects a number, got '${v}'`);
    return n;
  };
}

/** An integer. */
export function integer(flag: string): (v: string) => number {
  return (v) => {
    const n = Number(v);
    if (!Number.isInteger(n)) throw new Error(`${flag} expects an integer, got '${v}'`);
    return n;
  };
}

export function positiveInt(flag: string): (v: string) => number {
  return (v) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 1) throw new Error(`${flag} '${v}': expected a positive integer`);
    return n;
  };
}

export function positiveFloat(flag: string): (v: string) => number {
  return (v) => {
    const n = Number(v);
    if (!(n > 0) || !Number.isFinite(n)) throw new Error(`${flag} '${v}': expected a positive number`);
    return n;
  };
}

/** true/false (also 1/0, yes/no, on/off). */
export function bool(flag: string): (v: string) => boolean {
  return (v) => {
    if (/^(true|1|yes|on)$/i.test(v)) return true;
    if (/^(false|0|no|off)$/i.test(v)) return false;
    throw new Error(`${flag} expects true or false, got '${v}'`);
  };
}

/** `count` numbers given as `--flag a b ...` (a variadic option): collects them; the caller checks the count. */
export function tuple(flag: string, count: number): (v: string, prev: number[] | undefined) => number[] {
  return (v, prev) => {
    const n = Number(v);
    if (!Number.isFinite(n)) throw new Error(`${flag} expects ${count} numbers, got '${v}'`);
    return prev && prev.length < count ? [...prev, n] : [n];
  };
}

/** Two numbers given as `--flag a b`. */
export function pair(flag: string): (v: string, prev: number[] | undefined) => number[] {
  return tuple(flag, 2);
}

/** Comma-separated positive integers ('10,20'). */
export function intList(v: string, flag: string): number[] {
  const out = v.split(',').map((s) => Number(s.trim()));
  if (out.some((x) => !Number.isInteger(x) || x < 1)) throw new Error(`${flag} '${v}': expected positive integers separated by commas`);
  return out;
}

/** A repeatable option's values in order. */
export const collect = (v: string, prev: string[] | undefined): string[] => [...(prev ?? []), v];
