/**
 * Conditional Access at access-token issuance (not at PRT issuance) and the sign-in record each
 * token request leaves. Grants fill `ctx.signIn` as they learn who, what and from where; the
 * service logs it once the grant has answered or failed (service.ts).
 *
 * Lab choices (documented in README "Sign-in logs"):
 * - client app type: PRT-signed requests come through the broker -> mobileAppsAndDesktopClients;
 *   password and plain refresh requests whose User-Agent looks like a browser -> browser, else
 *   mobileAppsAndDesktopClients.
 * - client version: the `app_ver` claim of a PRT-signed request, else the `x-app-ver` header
 *   (the header MSAL sends with the calling app's version).
 * - edition: 2023-preview (DEFAULT_EDITION) until a tenant setting exists.
 */
import { DEFAULT_EDITION } from '../ca/catalog.ts';
import {
  type CaEvaluation,
  type CaRequestDevice,
  compilePolicies,
  evaluate,
  type RequestClientAppType,
} from '../ca/evaluate.ts';
import { type ConditionalAccessPolicy, parsePolicy } from '../ca/policy.ts';
import type { Application, Device, User } from '../directory/types.ts';
import { CloudRequestError } from '../errors.ts';
import type { CloudServices } from '../services.ts';
import type { IncomingTokenType } from '../signins/entry.ts';
import type { TokenContext } from './context.ts';

/** Where policies come from; the directory's policy store once it exists. */
export interface PolicySource {
  list(): Promise<unknown[]>;
}

export const NO_POLICIES: PolicySource = { list: async () => [] };

/** A stored policy record (`{ id, policy, ... }`) or the policy JSON itself. */
function policyJson(item: unknown): unknown {
  if (item && typeof item === 'object' && 'policy' in item) {
    const inner = (item as { policy: unknown }).policy;
    if (inner && typeof inner === 'object') return inner;
  }
  return item;
}

/**
 * `cloud.directory.policies` when it has a list() method at runtime (its records' `policy`
 * JSON), else no policies.
 */
export function defaultPolicySource(cloud: CloudServices): PolicySource {
  const p = (cloud.directory as unknown as { policies?: unknown }).policies;
  if (p && typeof (p as { list?: unknown }).list === 'function') {
    return { list: async () => ((await (p as PolicySource).list()) as unknown[]).map(policyJson) };
  }
  return NO_POLICIES;
}

/** Validated policies; one that no longer validates is skipped (and logged), never fatal. */
function parseAll(ctx: TokenContext, raw: readonly unknown[]): ConditionalAccessPolicy[] {
  const out: ConditionalAccessPolicy[] = [];
  for (const item of raw) {
    try {
      out.push(parsePolicy(policyJson(item)));
    } catch (err) {
      ctx.cloud.log(`conditional access: skipped an invalid policy (${(err as Error).message})`);
    }
  }
  return out;
}

/** What a grant has learnt about the request, for its sign-in log entry. */
export interface SignInDraft {
  incomingTokenType: IncomingTokenType;
  clientId?: string;
  attemptedUpn?: string;
  user?: User;
  resource?: Application;
  device?: Device;
  sessionId?: string;
  clientAppType?: RequestClientAppType;
  evaluation?: CaEvaluation;
}

const BROWSER_UA = /Mozilla\/\d|Chrome\/|Safari\/|Firefox\/|Edg\//;

export function clientAppTypeOf(ctx: TokenContext, viaBroker: boolean): RequestClientAppType {
  if (viaBroker) return 'mobileAppsAndDesktopClients';
  const ua = ctx.req.headers['user-agent'];
  return typeof ua === 'string' && BROWSER_UA.test(ua) ? 'browser' : 'mobileAppsAndDesktopClients';
}

function header(ctx: TokenContext, name: string): string | undefined {
  const v = ctx.req.headers[name];
  return typeof v === 'string' && v !== '' ? v : undefined;
}

function caDevice(d: Device): CaRequestDevice {
  return {
    id: d.id,
    joinType: d.joinType,
    trustType: d.trustType,
    operatingSystem: d.operatingSystem,
    operatingSystemVersion: d.operatingSystemVersion,
    systemLabels: d.systemLabels,
  };
}

/**
 * Evaluates the tenant's policies for one access-token issuance, records the result in the
 * sign-in draft and throws AADSTS53003 / 530084 (by edition) when an enabled policy blocks.
 */
export async function enforceConditionalAccess(
  ctx: TokenContext,
  args: {
    user: User;
    clientId: string;
    resource: Application;
    device?: Device;
    /** Signed with the PRT session key, through the broker. */
    prtSigned: boolean;
    clientVersion?: string;
  },
): Promise<CaEvaluation> {
  const raw = await ctx.policies.list();
  const compiled = compilePolicies(parseAll(ctx, raw));
  const memberships = await ctx.cloud.directory.users.memberOf(args.user.id);
  const clientAppType = clientAppTypeOf(ctx, args.prtSigned);
  const clientVersion = args.clientVersion ?? header(ctx, 'x-app-ver');
  const userAgent = header(ctx, 'user-agent');
  const evaluation = evaluate(compiled, {
    user: {
      id: args.user.id,
      kind: args.user.kind,
      groupIds: memberships.groups.map((g) => g.id),
      roleIds: memberships.roles.map((r) => r.id),
    },
    resourceAppId: args.resource.appId,
    clientAppId: args.clientId,
    clientAppType,
    ...(clientVersion !== undefined ? { clientVersion } : {}),
    ...(userAgent !== undefined ? { userAgent } : {}),
    ...(args.device ? { device: caDevice(args.device) } : {}),
    bound: { prtSigned: args.prtSigned, viaBroker: args.prtSigned },
    edition: DEFAULT_EDITION,
  });
  Object.assign(ctx.signIn, {
    user: args.user,
    clientId: args.clientId,
    resource: args.resource,
    clientAppType,
    evaluation,
    ...(args.device ? { device: args.device } : {}),
  });
  if (evaluation.blocked) {
    const code = evaluation.errorCode === 530084 ? 530084 : 53003;
    throw new CloudRequestError(code);
  }
  return evaluation;
}
