/**
 * Conditional Access `devices.deviceFilter.rule`: the subset of Entra's rule language that the
 * documented token-protection exclusions need (token-protection.md §1.3, §2.2, §2.5):
 *
 *   rule    := or
 *   or      := and ( ('-or' | 'or') and )*
 *   and     := primary ( ('-and' | 'and') primary )*
 *   primary := '(' or ')' | comparison
 *   comparison := property op value
 *   property := ['device.'] (trustType | systemLabels | operatingSystem | enrollmentProfileName
 *               | profileType | isCompliant)
 *   op      := -eq | -ne | -contains | -in
 *   value   := "string" | True | False | '[' "string" (',' "string")* ']'   (list only for -in)
 *
 * Operators, keywords, property names and string comparisons are case-insensitive (Entra compares
 * device attributes case-insensitively; inferred, it also makes the directory's `AzureAd` equal
 * the filter's `AzureAD`). `-and` binds tighter than `-or` (inferred; parenthesise to be sure).
 * The doc's prose fragments use bare `and`, so bare `and`/`or` are accepted too.
 *
 * Bounds: a rule is at most MAX_RULE_LENGTH characters and MAX_DEPTH parentheses deep. Every
 * failure throws CaError('ERR_CA_FILTER') naming the 0-based position.
 */
import { CaError } from './errors.ts';

/** Entra's documented cap on a device-filter rule is 3072 characters (lab cap, same number). */
export const MAX_RULE_LENGTH = 3072;
export const MAX_DEPTH = 16;

export const FILTER_PROPERTIES = [
  'trustType',
  'systemLabels',
  'operatingSystem',
  'enrollmentProfileName',
  'profileType',
  'isCompliant',
] as const;
export type FilterProperty = (typeof FILTER_PROPERTIES)[number];

export type FilterOperator = '-eq' | '-ne' | '-contains' | '-in';

export type FilterValue =
  | { readonly kind: 'string'; readonly value: string }
  | { readonly kind: 'boolean'; readonly value: boolean }
  | { readonly kind: 'list'; readonly values: readonly string[] };

export type FilterNode =
  | {
      readonly type: 'cmp';
      readonly property: FilterProperty;
      readonly op: FilterOperator;
      readonly value: FilterValue;
    }
  | { readonly type: 'and' | 'or'; readonly left: FilterNode; readonly right: FilterNode };

/** What a filter is evaluated against. Missing values are null (an unregistered device). */
export interface DeviceFilterInput {
  readonly trustType?: string | null;
  readonly systemLabels?: readonly string[] | null;
  readonly operatingSystem?: string | null;
  readonly enrollmentProfileName?: string | null;
  readonly profileType?: string | null;
  readonly isCompliant?: boolean | null;
}

export type DevicePredicate = (device: DeviceFilterInput) => boolean;

// ---------------------------------------------------------------------------------------------
// Tokenizer

type Token =
  | { t: 'ident'; v: string; pos: number }
  | { t: 'op'; v: string; pos: number }
  | { t: 'str'; v: string; pos: number }
  | { t: 'punct'; v: '(' | ')' | '[' | ']' | ','; pos: number }
  | { t: 'end'; pos: number };

function fail(message: string, pos: number): never {
  throw new CaError('ERR_CA_FILTER', `device filter, position ${pos}: ${message}`, {
    position: pos,
  });
}

const IDENT = /[A-Za-z0-9_.]/;
const OP_CHARS = /[A-Za-z]/;

function tokenize(rule: string): Token[] {
  const out: Token[] = [];
  let i = 0;
  while (i < rule.length) {
    const c = rule[i]!;
    if (c === ' ' || c === '\t' || c === '\n' || c === '\r') {
      i++;
    } else if (c === '(' || c === ')' || c === '[' || c === ']' || c === ',') {
      out.push({ t: 'punct', v: c, pos: i });
      i++;
    } else if (c === '"') {
      const start = i;
      let v = '';
      i++;
      for (;;) {
        if (i >= rule.length) fail('unterminated string', start);
        const d = rule[i]!;
        if (d === '"') break;
        if (d === '\\') {
          const e = rule[i + 1];
          if (e !== '"' && e !== '\\') fail('bad escape in string (only \\" and \\\\)', i);
          v += e;
          i += 2;
        } else {
          v += d;
          i++;
        }
      }
      i++;
      out.push({ t: 'str', v, pos: start });
    } else if (c === '-') {
      const start = i;
      i++;
      while (i < rule.length && OP_CHARS.test(rule[i]!)) i++;
      out.push({ t: 'op', v: rule.slice(start, i).toLowerCase(), pos: start });
    } else if (IDENT.test(c)) {
      const start = i;
      while (i < rule.length && IDENT.test(rule[i]!)) i++;
      out.push({ t: 'ident', v: rule.slice(start, i), pos: start });
    } else {
      fail(`unexpected character ${JSON.stringify(c)}`, i);
    }
  }
  out.push({ t: 'end', pos: rule.length });
  return out;
}

// ---------------------------------------------------------------------------------------------
// Parser

const PROPERTY_BY_LOWER = new Map<string, FilterProperty>(
  FILTER_PROPERTIES.map((p) => [p.toLowerCase(), p]),
);
const OPERATORS = new Set<string>(['-eq', '-ne', '-contains', '-in']);

class Parser {
  private i = 0;
  private depth = 0;
  private readonly toks: Token[];
  constructor(toks: Token[]) {
    this.toks = toks;
  }

  private peek(): Token {
    return this.toks[this.i]!;
  }
  private next(): Token {
    return this.toks[this.i++]!;
  }

  private isKeyword(tok: Token, word: 'and' | 'or'): boolean {
    if (tok.t === 'op') return tok.v === `-${word}`;
    return tok.t === 'ident' && tok.v.toLowerCase() === word;
  }

  parseRule(): FilterNode {
    const node = this.parseOr();
    const tok = this.peek();
    if (tok.t !== 'end') fail('expected -and, -or or end of rule', tok.pos);
    return node;
  }

  private parseOr(): FilterNode {
    let left = this.parseAnd();
    while (this.isKeyword(this.peek(), 'or')) {
      this.next();
      left = { type: 'or', left, right: this.parseAnd() };
    }
    return left;
  }

  private parseAnd(): FilterNode {
    let left = this.parsePrimary();
    while (this.isKeyword(this.peek(), 'and')) {
      this.next();
      left = { type: 'and', left, right: this.parsePrimary() };
    }
    return left;
  }

  private parsePrimary(): FilterNode {
    const tok = this.peek();
    if (tok.t === 'punct' && tok.v === '(') {
      this.next();
      if (++this.depth > MAX_DEPTH) fail(`nesting deeper than ${MAX_DEPTH}`, tok.pos);
      const inner = this.parseOr();
      const close = this.next();
      if (close.t !== 'punct' || close.v !== ')') fail("expected ')'", close.pos);
      this.depth--;
      return inner;
    }
    return this.parseComparison();
  }

  private parseComparison(): FilterNode {
    const ptok = this.next();
    if (ptok.t !== 'ident') fail("expected a device property or '('", ptok.pos);
    let name = ptok.v;
    if (name.toLowerCase().startsWith('device.')) name = name.slice('device.'.length);
    const property = PROPERTY_BY_LOWER.get(name.toLowerCase());
    if (property === undefined) fail(`unknown device property ${JSON.stringify(ptok.v)}`, ptok.pos);
    const otok = this.next();
    if (otok.t !== 'op' || !OPERATORS.has(otok.v)) {
      fail('expected -eq, -ne, -contains or -in', otok.pos);
    }
    const op = otok.v as FilterOperator;
    const value = this.parseValue(op);
    if (
      property === 'isCompliant' &&
      (value.kind !== 'boolean' || (op !== '-eq' && op !== '-ne'))
    ) {
      fail('isCompliant takes -eq or -ne with True or False', otok.pos);
    }
    if (property !== 'isCompliant' && value.kind === 'boolean') {
      fail(`${property} takes a string value`, otok.pos);
    }
    return { type: 'cmp', property, op, value };
  }

  private parseValue(op: FilterOperator): FilterValue {
    const tok = this.next();
    if (op === '-in') {
      if (tok.t !== 'punct' || tok.v !== '[') fail('-in expects a list \'["a", "b"]\'', tok.pos);
      const values: string[] = [];
      for (;;) {
        const s = this.next();
        if (s.t !== 'str') fail('expected a string in the list', s.pos);
        values.push(s.v);
        const sep = this.next();
        if (sep.t === 'punct' && sep.v === ']') break;
        if (sep.t !== 'punct' || sep.v !== ',') fail("expected ',' or ']'", sep.pos);
      }
      return { kind: 'list', values };
    }
    if (tok.t === 'str') return { kind: 'string', value: tok.v };
    if (tok.t === 'ident') {
      const lower = tok.v.toLowerCase();
      if (lower === 'true' || lower === 'false')
        return { kind: 'boolean', value: lower === 'true' };
    }
    return fail('expected a quoted string, True or False', tok.pos);
  }
}

/** Parses a rule into its syntax tree; throws CaError('ERR_CA_FILTER') on any problem. */
export function parseDeviceFilter(rule: string): FilterNode {
  if (typeof rule !== 'string') throw new TypeError('rule must be a string');
  if (rule.length > MAX_RULE_LENGTH) fail(`rule longer than ${MAX_RULE_LENGTH} characters`, 0);
  return new Parser(tokenize(rule)).parseRule();
}

// ---------------------------------------------------------------------------------------------
// Printer (canonical form: `device.` prefix, `-and`/`-or`, fully parenthesised sub-expressions)

function quote(s: string): string {
  return `"${s.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
}

export function printDeviceFilter(node: FilterNode): string {
  if (node.type === 'cmp') {
    const v = node.value;
    const value =
      v.kind === 'string'
        ? quote(v.value)
        : v.kind === 'boolean'
          ? v.value
            ? 'True'
            : 'False'
          : `[${v.values.map(quote).join(', ')}]`;
    return `device.${node.property} ${node.op} ${value}`;
  }
  const side = (n: FilterNode): string =>
    n.type === 'cmp' || n.type === node.type ? printDeviceFilter(n) : `(${printDeviceFilter(n)})`;
  // Left-associative: a right child of the same kind needs parentheses to keep its shape.
  const right =
    node.right.type === node.type ? `(${printDeviceFilter(node.right)})` : side(node.right);
  return `${side(node.left)} -${node.type} ${right}`;
}

// ---------------------------------------------------------------------------------------------
// Compiler

function lowerOrNull(v: string | null | undefined): string | null {
  return v === null || v === undefined ? null : v.toLowerCase();
}

/**
 * Compiles a tree to a predicate. Semantics (inferred from Entra's filter docs):
 * - string property: `-eq`/`-ne` case-insensitive equality; `-contains` substring; `-in` membership.
 *   A null (absent) value never equals anything, so `-ne` is true for it.
 * - systemLabels (multi-valued): `-eq` and `-contains` mean "some label equals"; `-in` means
 *   "some label is in the list"; `-ne` is the negation of `-eq`.
 * - isCompliant: null counts as false.
 */
export function compileDeviceFilter(node: FilterNode): DevicePredicate {
  if (node.type === 'cmp') return compileComparison(node);
  const l = compileDeviceFilter(node.left);
  const r = compileDeviceFilter(node.right);
  return node.type === 'and' ? (d) => l(d) && r(d) : (d) => l(d) || r(d);
}

function compileComparison(node: Extract<FilterNode, { type: 'cmp' }>): DevicePredicate {
  const { property, op, value } = node;
  if (property === 'isCompliant') {
    const want = value.kind === 'boolean' && value.value;
    return op === '-eq'
      ? (d) => (d.isCompliant ?? false) === want
      : (d) => (d.isCompliant ?? false) !== want;
  }
  const wanted =
    value.kind === 'list'
      ? new Set(value.values.map((s) => s.toLowerCase()))
      : new Set([value.kind === 'string' ? value.value.toLowerCase() : '']);
  const single = value.kind === 'string' ? value.value.toLowerCase() : '';
  if (property === 'systemLabels') {
    const any = (d: DeviceFilterInput): boolean => {
      const labels = d.systemLabels;
      if (!labels) return false;
      for (const l of labels) if (wanted.has(l.toLowerCase())) return true;
      return false;
    };
    return op === '-ne' ? (d) => !any(d) : any;
  }
  const get = (d: DeviceFilterInput): string | null => lowerOrNull(d[property]);
  switch (op) {
    case '-eq':
      return (d) => get(d) === single;
    case '-ne':
      return (d) => get(d) !== single;
    case '-contains':
      return (d) => get(d)?.includes(single) ?? false;
    case '-in':
      return (d) => {
        const v = get(d);
        return v !== null && wanted.has(v);
      };
  }
}

/** Parse + compile in one step. */
export function deviceFilterPredicate(rule: string): DevicePredicate {
  return compileDeviceFilter(parseDeviceFilter(rule));
}
