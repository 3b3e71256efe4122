/**
 * Conditional Access at access-token issuance (not at PRT issuance) and the sign-in record each
 * token request leaves. Grants fill `ctx.signIn` as they learn who, what and from where; the
 * service logs it once the grant has answered or failed (service.ts).
 *
 * Lab choices (documented in README "Sign-in logs"):
 * - client app type: PRT-signed requests come through the broker -> mobileAppsAndDesktopClients;
 *   password and plain refresh requests whose User-Agent looks like a browser -> browser, else
 *   mobileAppsAndDesktopClients; the code of a PRT cookie sign-in (/authorize) -> browser.
 * - client version: the `app_ver` claim of a PRT-signed request, else the `x-app-ver` header
 *   (the header MSAL sends with the calling app's version).
 * - edition: the tenant's setting (`prtlab policy edition`), 2023-preview until one is set.
 */
import { DEFAULT_EDITION, EDITIONS, type Edition } from '../ca/catalog.ts';
import {
  type CaEvaluation,
  type CaRequestDevice,
  type CompiledPolicies,
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

/** Where policies come from: the directory's policy store, or a test's own list. */
export interface PolicySource {
  /** Graph conditionalAccessPolicy JSON documents. */
  list(): Promise<unknown[]>;
  /** The tenant's catalog edition; DEFAULT_EDITION when absent. */
  edition?(): Promise<string>;
  /**
   * Changes whenever list() or edition() would answer differently. Without it, every request
   * reads and compiles the policies afresh.
   */
  changeToken?(): string;
}

export const NO_POLICIES: PolicySource = { list: async () => [] };

/** The directory's policies (their Graph JSON), edition and change token. */
export function directoryPolicySource(cloud: CloudServices): PolicySource {
  const store = cloud.directory.policies;
  return {
    list: async () => (await store.list()).map((p) => p.policy),
    edition: () => store.edition(),
    changeToken: () => store.changeToken(),
  };
}

/** What evaluation needs from the tenant's policies and settings. */
export interface CompiledConditionalAccess {
  readonly compiled: CompiledPolicies;
  readonly edition: Edition;
}

/**
 * Compiled policies, kept while the source's change token stays the same: parsing and compiling
 * 50 policies costs about 0.2 ms, evaluating them a few microseconds. A policy that no longer
 * validates is skipped and logged once per change, never fatal.
 */
export class ConditionalAccessCache {
  readonly #source: PolicySource;
  readonly #log: (line: string) => void;
  #token: string | undefined;
  #value: Promise<CompiledConditionalAccess> | undefined;

  constructor(source: PolicySource, log: (line: string) => void) {
    this.#source = source;
    this.#log = log;
  }

  get(): Promise<CompiledConditionalAccess> {
    const token = this.#source.changeToken?.();
    if (this.#value === undefined || token === undefined || token !== this.#token) {
      const value = this.#load();
      this.#token = token;
      this.#value = value;
      // A failed read is not kept: the next request tries again.
      value.catch(() => {
        if (this.#value === value) this.#value = undefined;
      });
    }
    return this.#value;
  }

  async #load(): Promise<CompiledConditionalAccess> {
    const [raw, edition] = await Promise.all([
      this.#source.list(),
      this.#source.edition?.() ?? Promise.resolve(DEFAULT_EDITION),
    ]);
    const policies: ConditionalAccessPolicy[] = [];
    for (const item of raw) {
      try {
        policies.push(parsePolicy(item));
      } catch (err) {
        this.#log(`conditional access: skipped an invalid policy (${(err as Error).message})`);
      }
    }
    let known: Edition = DEFAULT_EDITION;
    if ((EDITIONS as readonly string[]).includes(edition)) known = edition as Edition;
    else this.#log(`conditional access: unknown edition setting, using ${DEFAULT_EDITION}`);
    return { compiled: compilePolicies(policies), edition: known };
  }
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
    ...(d.isCompliant !== null ? { isCompliant: d.isCompliant } : {}),
    ...(d.enrollmentProfileName !== null ? { enrollmentProfileName: d.enrollmentProfileName } : {}),
    ...(d.profileType !== null ? { profileType: d.profileType } : {}),
    // Verified TPM attestation at registration (cloud/registration/attestation.ts).
    hardwareBacked: d.hardwareBacked,
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
    /**
     * The client app type when the flow itself says what it is, whatever the User-Agent: the
     * authorization code of a PRT cookie sign-in is `browser` (the cookie is the browser SSO
     * credential, prt-protocol §6.3).
     */
    clientAppType?: RequestClientAppType;
  },
): Promise<CaEvaluation> {
  const { compiled, edition } = await ctx.conditionalAccess.get();
  const memberships = await ctx.cloud.directory.users.memberOf(args.user.id);
  const clientAppType = args.clientAppType ?? clientAppTypeOf(ctx, args.prtSigned);
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
    edition,
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
