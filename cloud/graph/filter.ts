/**
 * The OData `$filter` subset the simulated Graph (beta) understands, for `/auditLogs/signIns`,
 * `/users`, `/groups` and `/devices`. Pure: text in, AST or predicate out; no I/O.
 *
 * Grammar (keywords and operators are lower-case, as Graph documents them):
 *
 *   filter     := or EOF
 *   or         := and ('or' and)*
 *   and        := unary ('and' unary)*
 *   unary      := 'not' unary | primary
 *   primary    := '(' or ')' | path ( '/' ('any'|'all') '(' ident ':' or ')' | cmpOp literal )
 *   path       := ident ('/' ident)*
 *   cmpOp      := 'eq' | 'ne' | 'gt' | 'ge' | 'lt' | 'le'
 *   literal    := 'string' ('' escapes a quote) | number | true | false | null
 *               | DateTimeOffset (2026-01-01T00:00:00Z, unquoted) | GUID (unquoted)
 *
 * A property path is always on the left of a comparison, a literal on the right. Inside a lambda
 * the range variable (`t` in `signInEventTypes/any(t: t eq 'x')`) names the element; for object
 * collections `p/result` names a property of the element.
 *
 * Every failure is a GraphFilterError whose message starts "at position N:" (1-based character
 * position in the filter text) and says what was expected and what was found.
 *
 * String comparison: case-insensitive by default (Graph directory properties such as
 * userPrincipalName and the sign-in log compare strings without regard to case). Pass
 * `{ caseSensitive: true }` to compile() for ordinal comparison. GUIDs always compare
 * case-insensitively. DateTimeOffset values compare by instant, not by text.
 */
import { PrtlabError } from '../../lib/errors.ts';

/** A refused Graph query option ($filter, $orderby, $top, $skiptoken); the HTTP layer answers 400. */
export class GraphFilterError extends PrtlabError {
  /** 1-based character position in the option's text, when there is one. */
  readonly position: number | undefined;

  constructor(message: string, position?: number) {
    super(
      'ERR_GRAPH_FILTER',
      position === undefined ? message : `at position ${position}: ${message}`,
    );
    this.position = position;
  }
}

export const MAX_FILTER_LENGTH = 2048;
/** Nesting of parentheses, `not` and lambdas. */
export const MAX_FILTER_DEPTH = 16;
/** Comparisons plus lambdas. */
export const MAX_FILTER_TERMS = 64;

export type ComparisonOperator = 'eq' | 'ne' | 'gt' | 'ge' | 'lt' | 'le';
const COMPARISON_OPERATORS: ReadonlySet<string> = new Set(['eq', 'ne', 'gt', 'ge', 'lt', 'le']);
/** Words that cannot start a property path. */
export const RESERVED: ReadonlySet<string> = new Set([
  'and',
  'or',
  'not',
  'eq',
  'ne',
  'gt',
  'ge',
  'lt',
  'le',
  'true',
  'false',
  'null',
  'any',
  'all',
  'in',
  'has',
]);

export type Literal =
  | { readonly kind: 'string'; readonly value: string; readonly pos: number }
  | { readonly kind: 'number'; readonly value: number; readonly pos: number }
  | { readonly kind: 'boolean'; readonly value: boolean; readonly pos: number }
  | { readonly kind: 'null'; readonly pos: number }
  /** `text` as written (ISO 8601 with an offset); `ms` the instant. */
  | { readonly kind: 'datetime'; readonly text: string; readonly ms: number; readonly pos: number }
  | { readonly kind: 'guid'; readonly value: string; readonly pos: number };

export interface PropertyPath {
  /** The lambda range variable the path starts from, or undefined for the resource itself. */
  readonly variable: string | undefined;
  /** Property names after the variable (may be empty when `variable` is set). */
  readonly segments: readonly string[];
  readonly pos: number;
}

export type FilterNode =
  | {
      readonly type: 'and' | 'or';
      readonly left: FilterNode;
      readonly right: FilterNode;
      readonly pos: number;
    }
  | { readonly type: 'not'; readonly operand: FilterNode; readonly pos: number }
  | {
      readonly type: 'compare';
      readonly op: ComparisonOperator;
      readonly path: PropertyPath;
      readonly value: Literal;
      readonly pos: number;
    }
  | {
      readonly type: 'lambda';
      readonly quantifier: 'any' | 'all';
      readonly path: PropertyPath;
      readonly variable: string;
      readonly body: FilterNode;
      readonly pos: number;
    };

// ----------------------------------------------------------------------------------------------
// Tokenizer

type TokenKind =
  | 'ident'
  | 'string'
  | 'number'
  | 'datetime'
  | 'guid'
  | '/'
  | '('
  | ')'
  | ':'
  | ','
  | 'eof';

interface Token {
  readonly kind: TokenKind;
  /** The source text of the token ('' for eof). */
  readonly text: string;
  /** For strings: the unescaped value. */
  readonly value: string;
  /** 1-based. */
  readonly pos: number;
}

const DATETIME_RE =
  /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2}(?:\.\d{1,7})?)?(?:Z|[+-]\d{2}:\d{2})(?![A-Za-z0-9_.:])/;
const GUID_RE =
  /^[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}(?![A-Za-z0-9_-])/;
const NUMBER_RE = /^-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?(?![A-Za-z0-9_.])/;
const IDENT_RE = /^[A-Za-z_][A-Za-z0-9_]*/;

function describe(tok: Token): string {
  return tok.kind === 'eof' ? 'end of input' : `'${tok.text}'`;
}

function tokenize(text: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  while (i < text.length) {
    const c = text[i]!;
    if (c === ' ' || c === '\t' || c === '\r' || c === '\n') {
      i++;
      continue;
    }
    const pos = i + 1;
    if (c === '/' || c === '(' || c === ')' || c === ':' || c === ',') {
      tokens.push({ kind: c, text: c, value: c, pos });
      i++;
      continue;
    }
    if (c === "'") {
      let value = '';
      let j = i + 1;
      for (;;) {
        if (j >= text.length) throw new GraphFilterError('unterminated string literal', pos);
        const d = text[j]!;
        if (d === "'") {
          if (text[j + 1] === "'") {
            value += "'";
            j += 2;
            continue;
          }
          break;
        }
        value += d;
        j++;
      }
      tokens.push({ kind: 'string', text: text.slice(i, j + 1), value, pos });
      i = j + 1;
      continue;
    }
    const rest = text.slice(i, i + 64);
    const dt = /[0-9]/.test(c) ? DATETIME_RE.exec(rest) : null;
    const guid = dt === null && /[0-9A-Fa-f]/.test(c) ? GUID_RE.exec(rest) : null;
    const m = dt ?? guid;
    if (m) {
      tokens.push({ kind: dt ? 'datetime' : 'guid', text: m[0], value: m[0], pos });
      i += m[0].length;
      continue;
    }
    if (/[0-9-]/.test(c)) {
      const n = NUMBER_RE.exec(text.slice(i, i + 400));
      if (!n) throw new GraphFilterError(`malformed number literal starting with '${c}'`, pos);
      tokens.push({ kind: 'number', text: n[0], value: n[0], pos });
      i += n[0].length;
      continue;
    }
    const id = IDENT_RE.exec(text.slice(i, i + MAX_FILTER_LENGTH));
    if (id) {
      tokens.push({ kind: 'ident', text: id[0], value: id[0], pos });
      i += id[0].length;
      continue;
    }
    const shown = JSON.stringify(String.fromCodePoint(text.codePointAt(i)!));
    throw new GraphFilterError(`unexpected character ${shown}`, pos);
  }
  tokens.push({ kind: 'eof', text: '', value: '', pos: text.length + 1 });
  return tokens;
}

// ----------------------------------------------------------------------------------------------
// Parser

export interface ParseLimits {
  readonly maxLength?: number;
  readonly maxDepth?: number;
  readonly maxTerms?: number;
}

class Parser {
  private i = 0;
  private depth = 0;
  private terms = 0;
  private readonly scope: string[] = [];

  private readonly tokens: readonly Token[];
  private readonly maxDepth: number;
  private readonly maxTerms: number;

  constructor(tokens: readonly Token[], maxDepth: number, maxTerms: number) {
    this.tokens = tokens;
    this.maxDepth = maxDepth;
    this.maxTerms = maxTerms;
  }

  private peek(offset = 0): Token {
    return this.tokens[Math.min(this.i + offset, this.tokens.length - 1)]!;
  }

  private next(): Token {
    const t = this.peek();
    if (t.kind !== 'eof') this.i++;
    return t;
  }

  private isWord(t: Token, word: string): boolean {
    return t.kind === 'ident' && t.text === word;
  }

  private expect(kind: TokenKind, what: string): Token {
    const t = this.peek();
    if (t.kind !== kind)
      throw new GraphFilterError(`expected ${what}, found ${describe(t)}`, t.pos);
    return this.next();
  }

  private enter(pos: number): void {
    if (++this.depth > this.maxDepth) {
      throw new GraphFilterError(`expression nested deeper than ${this.maxDepth} levels`, pos);
    }
  }

  private countTerm(pos: number): void {
    if (++this.terms > this.maxTerms) {
      throw new GraphFilterError(`more than ${this.maxTerms} terms in the filter`, pos);
    }
  }

  parseFilter(): FilterNode {
    const node = this.parseOr();
    const t = this.peek();
    if (t.kind !== 'eof') {
      throw new GraphFilterError(
        `expected 'and', 'or' or end of input, found ${describe(t)}`,
        t.pos,
      );
    }
    return node;
  }

  private parseOr(): FilterNode {
    let left = this.parseAnd();
    while (this.isWord(this.peek(), 'or')) {
      const op = this.next();
      left = { type: 'or', left, right: this.parseAnd(), pos: op.pos };
    }
    return left;
  }

  private parseAnd(): FilterNode {
    let left = this.parseUnary();
    while (this.isWord(this.peek(), 'and')) {
      const op = this.next();
      left = { type: 'and', left, right: this.parseUnary(), pos: op.pos };
    }
    return left;
  }

  private parseUnary(): FilterNode {
    const t = this.peek();
    if (this.isWord(t, 'not')) {
      this.next();
      this.enter(t.pos);
      const operand = this.parseUnary();
      this.depth--;
      return { type: 'not', operand, pos: t.pos };
    }
    return this.parsePrimary();
  }

  private parsePrimary(): FilterNode {
    const t = this.peek();
    if (t.kind === '(') {
      this.next();
      this.enter(t.pos);
      const inner = this.parseOr();
      this.expect(')', "')'");
      this.depth--;
      return inner;
    }
    if (t.kind !== 'ident' || RESERVED.has(t.text)) {
      throw new GraphFilterError(
        `expected a property path, 'not' or '(', found ${describe(t)}`,
        t.pos,
      );
    }
    // Property path, possibly ending in a lambda.
    this.next();
    const variable = this.scope.includes(t.text) ? t.text : undefined;
    const segments: string[] = variable === undefined ? [t.text] : [];
    for (;;) {
      if (this.peek().kind !== '/') break;
      const seg = this.peek(1);
      if (
        seg.kind === 'ident' &&
        (seg.text === 'any' || seg.text === 'all') &&
        this.peek(2).kind === '('
      ) {
        this.next();
        this.next();
        return this.parseLambda(seg.text, { variable, segments, pos: t.pos }, seg.pos);
      }
      this.next();
      if (seg.kind !== 'ident') {
        throw new GraphFilterError(
          `expected a property name after '/', found ${describe(seg)}`,
          seg.pos,
        );
      }
      this.next();
      segments.push(seg.text);
    }
    const path: PropertyPath = { variable, segments, pos: t.pos };
    const opTok = this.peek();
    if (opTok.kind !== 'ident' || !COMPARISON_OPERATORS.has(opTok.text)) {
      throw new GraphFilterError(
        `expected a comparison operator (eq, ne, gt, ge, lt, le), found ${describe(opTok)}`,
        opTok.pos,
      );
    }
    this.next();
    this.countTerm(t.pos);
    const value = this.parseLiteral();
    return { type: 'compare', op: opTok.text as ComparisonOperator, path, value, pos: opTok.pos };
  }

  private parseLambda(quantifier: 'any' | 'all', path: PropertyPath, pos: number): FilterNode {
    this.expect('(', "'('");
    this.enter(pos);
    this.countTerm(pos);
    const v = this.peek();
    if (v.kind !== 'ident' || RESERVED.has(v.text)) {
      throw new GraphFilterError(`expected a lambda variable name, found ${describe(v)}`, v.pos);
    }
    if (this.scope.includes(v.text)) {
      throw new GraphFilterError(`lambda variable '${v.text}' is already in use`, v.pos);
    }
    this.next();
    this.expect(':', "':' after the lambda variable");
    this.scope.push(v.text);
    const body = this.parseOr();
    this.scope.pop();
    this.expect(')', "')' to close the lambda");
    this.depth--;
    return { type: 'lambda', quantifier, path, variable: v.text, body, pos };
  }

  private parseLiteral(): Literal {
    const t = this.peek();
    switch (t.kind) {
      case 'string':
        this.next();
        return { kind: 'string', value: t.value, pos: t.pos };
      case 'number': {
        const value = Number(t.text);
        if (!Number.isFinite(value)) {
          throw new GraphFilterError(`number literal ${t.text} is out of range`, t.pos);
        }
        this.next();
        return { kind: 'number', value, pos: t.pos };
      }
      case 'datetime': {
        const ms = Date.parse(t.text);
        if (!Number.isFinite(ms) || !validCalendar(t.text)) {
          throw new GraphFilterError(`invalid DateTimeOffset literal ${t.text}`, t.pos);
        }
        this.next();
        return { kind: 'datetime', text: t.text, ms, pos: t.pos };
      }
      case 'guid':
        this.next();
        return { kind: 'guid', value: t.text.toLowerCase(), pos: t.pos };
      case 'ident':
        if (t.text === 'true' || t.text === 'false') {
          this.next();
          return { kind: 'boolean', value: t.text === 'true', pos: t.pos };
        }
        if (t.text === 'null') {
          this.next();
          return { kind: 'null', pos: t.pos };
        }
        break;
      default:
        break;
    }
    throw new GraphFilterError(`expected a literal value, found ${describe(t)}`, t.pos);
  }
}

/** Rejects 2026-02-31 and 25:00, which Date.parse may roll over or accept. */
function validCalendar(text: string): boolean {
  const y = Number(text.slice(0, 4));
  const mo = Number(text.slice(5, 7));
  const d = Number(text.slice(8, 10));
  const h = Number(text.slice(11, 13));
  const mi = Number(text.slice(14, 16));
  const s = text[16] === ':' ? Number(text.slice(17, 19)) : 0;
  if (mo < 1 || mo > 12 || d < 1 || h > 23 || mi > 59 || s > 59) return false;
  const days = new Date(Date.UTC(y, mo, 0)).getUTCDate();
  return d <= days;
}

/** Parses `$filter` text into an AST. Throws GraphFilterError naming the position. */
export function parseFilter(text: string, limits: ParseLimits = {}): FilterNode {
  const maxLength = limits.maxLength ?? MAX_FILTER_LENGTH;
  if (text.length > maxLength) {
    throw new GraphFilterError(`filter longer than ${maxLength} characters`, maxLength + 1);
  }
  const tokens = tokenize(text);
  if (tokens.length === 1)
    throw new GraphFilterError('expected a filter expression, found end of input', 1);
  return new Parser(
    tokens,
    limits.maxDepth ?? MAX_FILTER_DEPTH,
    limits.maxTerms ?? MAX_FILTER_TERMS,
  ).parseFilter();
}

// ----------------------------------------------------------------------------------------------
// Printer (canonical text; parseFilter(printFilter(ast)) equals ast up to positions)

function printLiteral(v: Literal): string {
  switch (v.kind) {
    case 'string':
      return `'${v.value.replaceAll("'", "''")}'`;
    case 'number':
      return String(v.value);
    case 'boolean':
      return String(v.value);
    case 'null':
      return 'null';
    case 'datetime':
      return v.text;
    case 'guid':
      return v.value;
  }
}

function printPath(p: PropertyPath): string {
  return [...(p.variable === undefined ? [] : [p.variable]), ...p.segments].join('/');
}

export function printFilter(node: FilterNode): string {
  switch (node.type) {
    case 'and':
    case 'or':
      return `(${printFilter(node.left)}) ${node.type} (${printFilter(node.right)})`;
    case 'not':
      return `not (${printFilter(node.operand)})`;
    case 'compare':
      return `${printPath(node.path)} ${node.op} ${printLiteral(node.value)}`;
    case 'lambda':
      return `${printPath(node.path)}/${node.quantifier}(${node.variable}: ${printFilter(node.body)})`;
  }
}

// ----------------------------------------------------------------------------------------------
// Schema and compilation

export type ScalarType = 'string' | 'number' | 'datetime' | 'boolean';
/**
 * A field: a scalar, a collection of scalars (`{ collection: 'string' }`), or a collection of
 * objects whose own fields are described by a nested schema.
 */
export type FieldSpec =
  | ScalarType
  | { readonly collection: ScalarType }
  | { readonly collection: FilterSchema };
/** Allowed filter paths, written with '/' (e.g. 'status/errorCode'), and their types. */
export interface FilterSchema {
  readonly [path: string]: FieldSpec;
}

export interface CompileOptions {
  /** Ordinal string comparison instead of Graph's case-insensitive default. */
  readonly caseSensitive?: boolean;
}

export type FilterPredicate = (obj: unknown) => boolean;

/** The `$filter` fields of a Graph beta `signIn` (docs/token-protection.md §3). */
export const SIGN_IN_FILTER_SCHEMA: FilterSchema = {
  id: 'string',
  createdDateTime: 'datetime',
  userId: 'string',
  userPrincipalName: 'string',
  userDisplayName: 'string',
  userType: 'string',
  appId: 'string',
  appDisplayName: 'string',
  resourceId: 'string',
  resourceDisplayName: 'string',
  correlationId: 'string',
  originalRequestId: 'string',
  sessionId: 'string',
  isInteractive: 'boolean',
  signInEventTypes: { collection: 'string' },
  incomingTokenType: 'string',
  crossTenantAccessType: 'string',
  homeTenantId: 'string',
  resourceTenantId: 'string',
  clientAppUsed: 'string',
  conditionalAccessStatus: 'string',
  'status/errorCode': 'number',
  'status/failureReason': 'string',
  'status/additionalDetails': 'string',
  'deviceDetail/deviceId': 'string',
  'deviceDetail/displayName': 'string',
  'deviceDetail/operatingSystem': 'string',
  'deviceDetail/browser': 'string',
  'deviceDetail/isCompliant': 'boolean',
  'deviceDetail/isManaged': 'boolean',
  'deviceDetail/trustType': 'string',
  signInTokenProtectionStatus: 'string',
  'tokenProtectionStatusDetails/signInSessionStatus': 'string',
  'tokenProtectionStatusDetails/signInSessionStatusCode': 'number',
  appliedConditionalAccessPolicies: {
    collection: {
      id: 'string',
      displayName: 'string',
      result: 'string',
      enforcedGrantControls: { collection: 'string' },
      enforcedSessionControls: { collection: 'string' },
      sessionControlsNotSatisfied: { collection: 'string' },
    },
  },
};

type Getter = (root: unknown, env: readonly unknown[]) => unknown;

function getIn(value: unknown, segments: readonly string[]): unknown {
  let cur = value;
  for (const s of segments) {
    if (cur === null || typeof cur !== 'object' || Array.isArray(cur)) return undefined;
    cur = Object.hasOwn(cur, s) ? (cur as Record<string, unknown>)[s] : undefined;
  }
  return cur;
}

interface Scope {
  readonly name: string;
  /** The element type of the collection the variable ranges over. */
  readonly element: ScalarType | FilterSchema;
}

class Compiler {
  private readonly scopes: Scope[] = [];

  private readonly schema: FilterSchema;
  private readonly caseSensitive: boolean;

  constructor(schema: FilterSchema, caseSensitive: boolean) {
    this.schema = schema;
    this.caseSensitive = caseSensitive;
  }

  /** Resolves a path to its field spec and a getter (env holds the lambda elements, by depth). */
  private resolve(path: PropertyPath): { spec: FieldSpec; get: Getter } {
    const text = printPath(path);
    if (path.variable !== undefined) {
      const depth = this.scopes.findIndex((s) => s.name === path.variable);
      const scope = this.scopes[depth]!;
      const segs = path.segments;
      if (typeof scope.element === 'string') {
        if (segs.length > 0) {
          throw new GraphFilterError(
            `'${path.variable}' is a ${scope.element} and has no property '${segs[0]}'`,
            path.pos,
          );
        }
        return { spec: scope.element, get: (_root, env) => env[depth] };
      }
      const spec = scope.element[segs.join('/')];
      if (segs.length === 0 || spec === undefined) {
        throw new GraphFilterError(`unsupported property '${text}' in the filter`, path.pos);
      }
      return { spec, get: (_root, env) => getIn(env[depth], segs) };
    }
    const spec = Object.hasOwn(this.schema, text) ? this.schema[text] : undefined;
    if (spec === undefined) {
      throw new GraphFilterError(`unsupported property '${text}' in the filter`, path.pos);
    }
    const segs = path.segments;
    return { spec, get: (root) => getIn(root, segs) };
  }

  compile(node: FilterNode): (root: unknown, env: readonly unknown[]) => boolean {
    switch (node.type) {
      case 'and': {
        const l = this.compile(node.left);
        const r = this.compile(node.right);
        return (root, env) => l(root, env) && r(root, env);
      }
      case 'or': {
        const l = this.compile(node.left);
        const r = this.compile(node.right);
        return (root, env) => l(root, env) || r(root, env);
      }
      case 'not': {
        const inner = this.compile(node.operand);
        return (root, env) => !inner(root, env);
      }
      case 'lambda': {
        const { spec, get } = this.resolve(node.path);
        if (typeof spec === 'string') {
          throw new GraphFilterError(
            `'${printPath(node.path)}' is not a collection; ${node.quantifier}() needs one`,
            node.path.pos,
          );
        }
        this.scopes.push({ name: node.variable, element: spec.collection });
        const body = this.compile(node.body);
        this.scopes.pop();
        const depth = this.scopes.length;
        const all = node.quantifier === 'all';
        return (root, env) => {
          const coll = get(root, env);
          const items = Array.isArray(coll) ? coll : [];
          const test = (item: unknown): boolean => {
            const inner = env.slice(0, depth);
            inner.push(item);
            return body(root, inner);
          };
          return all ? items.every(test) : items.some(test);
        };
      }
      case 'compare':
        return this.compileCompare(node);
    }
  }

  private compileCompare(
    node: Extract<FilterNode, { type: 'compare' }>,
  ): (root: unknown, env: readonly unknown[]) => boolean {
    const { spec, get } = this.resolve(node.path);
    const name = printPath(node.path);
    if (typeof spec !== 'string') {
      throw new GraphFilterError(
        `'${name}' is a collection; compare its elements with ${name}/any(x: x ${node.op} ...)`,
        node.path.pos,
      );
    }
    const lit = node.value;
    const op = node.op;
    const ordering = op !== 'eq' && op !== 'ne';
    const mismatch = (wanted: string): GraphFilterError =>
      new GraphFilterError(
        `expected ${wanted} to compare with '${name}', found ${printLiteral(lit)}`,
        lit.pos,
      );

    if (lit.kind === 'null') {
      if (ordering) throw new GraphFilterError(`null can only be compared with eq or ne`, lit.pos);
      return (root, env) => {
        const v = get(root, env);
        return (v === null || v === undefined) === (op === 'eq');
      };
    }

    let key: (v: unknown) => string | number | boolean | undefined;
    let target: string | number | boolean;
    switch (spec) {
      case 'string': {
        if (lit.kind !== 'string' && lit.kind !== 'guid') throw mismatch('a string literal');
        const fold = this.caseSensitive && lit.kind === 'string' ? (s: string) => s : foldCase;
        target = fold(lit.value);
        key = (v) => (typeof v === 'string' ? fold(v) : undefined);
        break;
      }
      case 'number':
        if (lit.kind !== 'number') throw mismatch('a number literal');
        target = lit.value;
        key = (v) => (typeof v === 'number' && Number.isFinite(v) ? v : undefined);
        break;
      case 'datetime':
        if (lit.kind !== 'datetime')
          throw mismatch('a DateTimeOffset literal such as 2026-01-01T00:00:00Z');
        target = lit.ms;
        key = (v) => {
          const ms =
            v instanceof Date ? v.getTime() : typeof v === 'string' ? Date.parse(v) : Number.NaN;
          return Number.isFinite(ms) ? ms : undefined;
        };
        break;
      case 'boolean':
        if (lit.kind !== 'boolean') throw mismatch('true or false');
        if (ordering) throw new GraphFilterError(`'${name}' is a boolean; use eq or ne`, node.pos);
        target = lit.value;
        key = (v) => (typeof v === 'boolean' ? v : undefined);
        break;
    }
    const t = target;
    const k = key;
    return (root, env) => {
      const v = k(get(root, env));
      if (v === undefined) return op === 'ne';
      switch (op) {
        case 'eq':
          return v === t;
        case 'ne':
          return v !== t;
        case 'gt':
          return v > t;
        case 'ge':
          return v >= t;
        case 'lt':
          return v < t;
        case 'le':
          return v <= t;
      }
    };
  }
}

function foldCase(s: string): string {
  return s.toLowerCase();
}

/**
 * Checks an AST against a schema and returns a predicate over plain JSON objects. Unknown paths,
 * type mismatches (a string for a number field, an undated value for a datetime) and comparisons
 * on collections throw GraphFilterError naming the position. A missing or wrongly typed value in
 * the data never matches, except under `ne`.
 */
export function compileFilter(
  ast: FilterNode,
  schema: FilterSchema,
  options: CompileOptions = {},
): FilterPredicate {
  const fn = new Compiler(schema, options.caseSensitive === true).compile(ast);
  return (obj) => fn(obj, []);
}

/** parseFilter then compileFilter. */
export function filterPredicate(
  text: string,
  schema: FilterSchema,
  options: CompileOptions & ParseLimits = {},
): FilterPredicate {
  return compileFilter(parseFilter(text, options), schema, options);
}

// ----------------------------------------------------------------------------------------------
// $orderby and $top

export interface OrderByTerm {
  readonly path: string;
  readonly direction: 'asc' | 'desc';
}

/**
 * Parses `$orderby`: a comma-separated list of `path [asc|desc]` where each path is one of
 * `allowed` (e.g. ['createdDateTime']). Directions default to asc, as in OData.
 */
export function parseOrderBy(text: string, allowed: readonly string[]): OrderByTerm[] {
  if (text.length > 256) throw new GraphFilterError('$orderby longer than 256 characters', 257);
  // Words and commas with their 1-based positions.
  const toks: { text: string; pos: number }[] = [];
  for (const m of text.matchAll(/,|[^\s,]+/g)) toks.push({ text: m[0], pos: m.index + 1 });
  const end = { text: '', pos: text.length + 1 };
  const shown = (t: { text: string }): string => (t.text === '' ? 'end of input' : `'${t.text}'`);
  const terms: OrderByTerm[] = [];
  let i = 0;
  for (;;) {
    const p = toks[i] ?? end;
    if (p.text === '' || p.text === ',') {
      throw new GraphFilterError(`expected a property to order by, found ${shown(p)}`, p.pos);
    }
    if (!allowed.includes(p.text)) {
      throw new GraphFilterError(
        `cannot order by '${p.text}'; supported: ${allowed.join(', ')}`,
        p.pos,
      );
    }
    if (terms.some((t) => t.path === p.text)) {
      throw new GraphFilterError(`'${p.text}' appears twice in $orderby`, p.pos);
    }
    i++;
    let direction: 'asc' | 'desc' = 'asc';
    const d = toks[i] ?? end;
    if (d.text === 'asc' || d.text === 'desc') {
      direction = d.text;
      i++;
    }
    terms.push({ path: p.text, direction });
    const sep = toks[i] ?? end;
    if (sep.text === '') return terms;
    if (sep.text !== ',') {
      throw new GraphFilterError(
        `expected 'asc', 'desc', ',' or end of input, found ${shown(sep)}`,
        sep.pos,
      );
    }
    i++;
  }
}

/** A comparator for Array.prototype.sort from $orderby terms (missing values sort first). */
export function orderByComparator(
  terms: readonly OrderByTerm[],
): (a: unknown, b: unknown) => number {
  const getters = terms.map((t) => ({
    segs: t.path.split('/'),
    sign: t.direction === 'desc' ? -1 : 1,
  }));
  const rank = (v: unknown): number | string | undefined => {
    if (typeof v === 'number') return v;
    if (typeof v === 'boolean') return v ? 1 : 0;
    if (typeof v === 'string') {
      const ms = DATETIME_RE.test(v) ? Date.parse(v) : Number.NaN;
      return Number.isFinite(ms) ? ms : v.toLowerCase();
    }
    return undefined;
  };
  return (a, b) => {
    for (const { segs, sign } of getters) {
      const x = rank(getIn(a, segs));
      const y = rank(getIn(b, segs));
      if (x === y) continue;
      if (x === undefined) return -sign;
      if (y === undefined) return sign;
      return (x < y ? -1 : 1) * sign;
    }
    return 0;
  };
}

export const MAX_TOP = 1000;

/** Parses `$top` (absent: `fallback`); an integer from 1 to 1000. */
export function parseTop(text: string | undefined | null, fallback: number): number {
  if (text === undefined || text === null) return fallback;
  if (!/^\d{1,4}$/.test(text) || Number(text) < 1 || Number(text) > MAX_TOP) {
    const shown = text.length > 20 ? `${text.slice(0, 20)}...` : text;
    throw new GraphFilterError(`$top must be an integer from 1 to ${MAX_TOP}, found '${shown}'`);
  }
  return Number(text);
}
