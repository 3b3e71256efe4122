/**
 * The routing table: method + path pattern -> handler. Patterns are literal segments and
 * `{name}` parameters, e.g. `/{tenant}/oauth2/v2.0/token` or `/EnrollmentServer/device/{id}`.
 * Literal segments match case-insensitively (Entra's paths do) and a trailing slash is ignored.
 * When several patterns match, the one with the most literal segments wins, so
 * `/common/discovery/keys` may be routed apart from `/{tenant}/discovery/keys`.
 */

export type HttpMethod = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

const METHODS: readonly HttpMethod[] = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE'];
const PARAM = /^\{([a-zA-Z][a-zA-Z0-9_]*)\}$/;
const LITERAL = /^[A-Za-z0-9._~!$&'()*+,;=:@-]+$/;

type Segment = { literal: string } | { param: string };

export interface RouteEntry<H> {
  readonly method: HttpMethod;
  readonly pattern: string;
  readonly handler: H;
  readonly segments: readonly Segment[];
  readonly literals: number;
}

export type RouteMatch<H> =
  | { kind: 'found'; route: RouteEntry<H>; params: Record<string, string> }
  /** The path exists, but not for this method. */
  | { kind: 'method'; allowed: readonly HttpMethod[] }
  | { kind: 'none' };

/** Splits a path into segments; '' for the root, trailing slash dropped. */
export function pathSegments(path: string): string[] {
  const parts = path.split('/').slice(1);
  if (parts.length > 0 && parts[parts.length - 1] === '') parts.pop();
  return parts;
}

export class Router<H> {
  readonly #routes: RouteEntry<H>[] = [];

  /** Adds a route. A duplicate method + pattern is a programming error (TypeError). */
  add(method: HttpMethod, pattern: string, handler: H): void {
    if (!METHODS.includes(method)) throw new TypeError(`unsupported method ${String(method)}`);
    if (typeof pattern !== 'string' || !pattern.startsWith('/')) {
      throw new TypeError(`route pattern must start with '/': ${String(pattern)}`);
    }
    const segments: Segment[] = pathSegments(pattern).map((s) => {
      const m = PARAM.exec(s);
      if (m) return { param: m[1]! };
      if (!LITERAL.test(s)) throw new TypeError(`bad route segment '${s}' in ${pattern}`);
      return { literal: s.toLowerCase() };
    });
    const names = segments.flatMap((s) => ('param' in s ? [s.param] : []));
    if (new Set(names).size !== names.length)
      throw new TypeError(`repeated parameter in ${pattern}`);
    const key = shapeKey(segments);
    if (this.#routes.some((r) => r.method === method && shapeKey(r.segments) === key)) {
      throw new TypeError(`route ${method} ${pattern} is already registered`);
    }
    this.#routes.push({
      method,
      pattern,
      handler,
      segments,
      literals: segments.filter((s) => 'literal' in s).length,
    });
  }

  /** Matches already-decoded path segments. */
  match(method: string, segments: readonly string[]): RouteMatch<H> {
    let best: { route: RouteEntry<H>; params: Record<string, string> } | undefined;
    const allowed = new Set<HttpMethod>();
    for (const route of this.#routes) {
      const params = matchSegments(route.segments, segments);
      if (params === undefined) continue;
      allowed.add(route.method);
      if (route.method !== method) continue;
      if (best === undefined || route.literals > best.route.literals) best = { route, params };
    }
    if (best) return { kind: 'found', ...best };
    if (allowed.size > 0) return { kind: 'method', allowed: [...allowed] };
    return { kind: 'none' };
  }

  get routes(): readonly RouteEntry<H>[] {
    return this.#routes;
  }
}

function shapeKey(segments: readonly Segment[]): string {
  return segments.map((s) => ('literal' in s ? s.literal : '{}')).join('/');
}

function matchSegments(
  pattern: readonly Segment[],
  segments: readonly string[],
): Record<string, string> | undefined {
  if (pattern.length !== segments.length) return undefined;
  const params: Record<string, string> = {};
  for (let i = 0; i < pattern.length; i++) {
    const p = pattern[i]!;
    const s = segments[i]!;
    if ('literal' in p) {
      if (p.literal !== s.toLowerCase()) return undefined;
    } else {
      if (s === '') return undefined;
      params[p.param] = s;
    }
  }
  return params;
}
