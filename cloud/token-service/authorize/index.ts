/**
 * `GET /{tenant}/oauth2/authorize` (v1, `resource`) and `/{tenant}/oauth2/v2.0/authorize` (v2,
 * `scope`): the authorization endpoint of the code flow (RFC 6749 §4.1.1), with browser SSO by
 * the PRT cookie `x-ms-RefreshTokenCredential` (prt-protocol §6.3) as its only way to sign in.
 *
 * The request is checked in the order RFC 6749 §4.1.2.1 needs:
 *   1. what decides whether a redirect is safe: client_id (a known public client) and
 *      redirect_uri (authorize/redirect-uri.ts), plus the size of `state`. A failure here is an
 *      error page (AADSTS900144, 700016, 50011), never a redirect;
 *   2. the rest of the request (response_type=code, resource or scope, PKCE's code_challenge,
 *      prompt): a failure is redirected to redirect_uri as `error` and `error_description`;
 *   3. the credential (authorize/prt-cookie.ts):
 *      - valid: 302 to redirect_uri with `code` (cloud/tokens/auth-code.ts, 10 minutes, single
 *        use, bound to client, redirect URI, user, device, resource or scope, PRT session and
 *        PKCE challenge) and `state`;
 *      - stale (no nonce, or one past its lifetime): 302 back to this authorize URL with a fresh
 *        `sso_nonce`, as ESTS does (prt-protocol §3 "Browser variant", §6.3), so the browser's
 *        SSO component can mint a cookie over it. Once only: when the URL already carries a
 *        fresh sso_nonce of ours, the client has had its chance and the cookie is ignored;
 *      - absent or ignored: the interactive sign-in page (200), the same page whichever check
 *        failed (§6.3: ESTS ignores a bad credential rather than answering an error); with
 *        `prompt=none`, which forbids any page (OpenID Connect Core §3.1.2.6), a redirect with
 *        `error=interaction_required` (AADSTS50058, Entra's code for a silent sign-in without a
 *        session).
 * `prompt=login`, `select_account` and `consent` ask for an interactive step, so they get the
 * page without the credential being looked at. The lab has no interactive sign-in and sets no
 * ESTS session cookies. An authorize request leaves no sign-in log entry: the code's redemption
 * does, where Conditional Access runs (grants/authorization-code.ts). Codes, cookies and tokens
 * never reach the log (which records the path without the query); the reason a credential was
 * ignored does, with the trace id.
 */
import { randomUUID } from 'node:crypto';
import { CloudError, echo } from '../../errors.ts';
import { entraTimestamp, type RequestIds } from '../../http/entra-error.ts';
import type { CloudRequest, CloudResponse } from '../../http/server.ts';
import type { CloudServices } from '../../services.ts';
import { AUTH_CODE_LIFETIME_S, type AuthCodeClaims, sealAuthCode } from '../../tokens/auth-code.ts';
import type { TokenKeys } from '../../tokens/keys.ts';
import { checkNonce, issueNonce } from '../../tokens/nonce.ts';
import { resolveResource } from '../resources.ts';
import { authorizeErrorPage, interactiveSignInPage } from './page.ts';
import { checkCredential, presentedCredential } from './prt-cookie.ts';
import { acceptedRedirectUri } from './redirect-uri.ts';

/** Query caps (the URL is capped at 8 KiB already): each value, and `state` in particular. */
const MAX_PARAM_CHARS = 2048;
const MAX_RESOURCE_CHARS = 512;
/** RFC 7636 §4.2: an S256 challenge is BASE64URL(SHA256(verifier)), 43 characters. */
const S256_CHALLENGE = /^[A-Za-z0-9_-]{43}$/;
const PROMPTS = new Set(['none', 'login', 'select_account', 'consent']);

export interface AuthorizeDeps {
  /** The token keys (nonce MAC key, PRT sealing key), loaded with the token service's. */
  readonly keys: () => Promise<TokenKeys>;
  /** This process's authorization-code sealing key. */
  readonly authCodeKey: Buffer;
}

/** A failure that must not be redirected (RFC 6749 §4.1.2.1). */
class PageError extends Error {
  readonly aadsts: number;
  readonly text: string;

  constructor(aadsts: number, text: string) {
    super(text);
    this.aadsts = aadsts;
    this.text = text;
  }
}

/** An OAuth error for the redirect (RFC 6749 §4.1.2.1): `error` and an Entra-style description. */
interface RedirectError {
  readonly error: string;
  readonly aadsts: number;
  readonly text: string;
}

function entraDescription(aadsts: number, text: string, ids: RequestIds, now: Date): string {
  return (
    `AADSTS${aadsts}: ${text} Trace ID: ${ids.traceId} Correlation ID: ${ids.correlationId} ` +
    `Timestamp: ${entraTimestamp(now)}`
  );
}

/** One value of the query: absent or empty is undefined; repeated is refused (RFC 6749 §3.1). */
function param(query: URLSearchParams, name: string, max = MAX_PARAM_CHARS): string | undefined {
  const all = query.getAll(name);
  if (all.length > 1) throw new PageError(9002313, `The parameter '${name}' is repeated.`);
  const v = all[0];
  if (v === undefined || v === '') return undefined;
  if (v.length > max) throw new PageError(9002313, `The parameter '${name}' is too long.`);
  return v;
}

function redirect(location: string): CloudResponse {
  return { status: 302, headers: { location } };
}

export function authorizeHandler(cloud: CloudServices, version: 1 | 2, deps: AuthorizeDeps) {
  return async (req: CloudRequest): Promise<CloudResponse> => {
    const now = cloud.now();
    const nowS = Math.floor(now.getTime() / 1000);
    const q = req.query;
    try {
      // 1. Whether and where a redirect may go.
      const clientId = param(q, 'client_id');
      if (clientId === undefined)
        throw new PageError(900144, "The request must contain the parameter 'client_id'.");
      const app = await cloud.directory.applications.get(clientId);
      if (app?.kind !== 'client')
        throw new PageError(
          700016,
          `Application with identifier '${echo(clientId)}' was not found in the directory '${cloud.tenant.domain}'.`,
        );
      const redirectUri = param(q, 'redirect_uri');
      if (redirectUri === undefined)
        throw new PageError(900144, "The request must contain the parameter 'redirect_uri'.");
      const target = acceptedRedirectUri(redirectUri, app.publicClient);
      if (!target)
        throw new PageError(
          50011,
          `The redirect URI '${echo(redirectUri)}' specified in the request does not match the redirect URIs configured for the application '${echo(clientId)}'.`,
        );
      const state = param(q, 'state');

      const back = (e: RedirectError): CloudResponse => {
        const url = new URL(target.href);
        url.searchParams.set('error', e.error);
        url.searchParams.set('error_description', entraDescription(e.aadsts, e.text, req.ids, now));
        if (state !== undefined) url.searchParams.set('state', state);
        return redirect(url.href);
      };

      // 2. The rest of the request, answered at redirect_uri.
      let resourceParam: string | undefined;
      let scope: string | undefined;
      let challenge: string | undefined;
      let prompt: string | undefined;
      try {
        const responseType = param(q, 'response_type');
        if (responseType === undefined)
          return back({
            error: 'invalid_request',
            aadsts: 900144,
            text: "The request must contain the parameter 'response_type'.",
          });
        if (responseType !== 'code')
          return back({
            error: 'unsupported_response_type',
            aadsts: 9002313,
            text: `The response_type '${echo(responseType)}' is not supported: the lab answers 'code' only.`,
          });
        resourceParam = version === 1 ? param(q, 'resource', MAX_RESOURCE_CHARS) : undefined;
        scope = param(q, 'scope');
        // Checked now, so a code is never issued for what its redemption would refuse.
        await resolveResource(cloud, { resource: resourceParam, scope });
        challenge = param(q, 'code_challenge');
        const method = param(q, 'code_challenge_method');
        if (challenge !== undefined || method !== undefined) {
          // RFC 7636 §4.3 makes "plain" the default; the lab takes S256 only (§4.2: a client
          // able to use S256 must), so a challenge without a method is refused too.
          if (method !== 'S256' || challenge === undefined || !S256_CHALLENGE.test(challenge))
            return back({
              error: 'invalid_request',
              aadsts: 9002313,
              text: 'PKCE: code_challenge_method must be S256 with a 43-character code_challenge.',
            });
        }
        prompt = param(q, 'prompt');
        if (prompt !== undefined && !PROMPTS.has(prompt))
          return back({
            error: 'invalid_request',
            aadsts: 9002313,
            text: `The prompt '${echo(prompt)}' is not supported.`,
          });
      } catch (err) {
        if (err instanceof PageError)
          return back({ error: 'invalid_request', aadsts: err.aadsts, text: err.text });
        // A resource or scope the directory does not know (50001, 70011); server-side
        // failures are not the client's to hear about at its redirect URI.
        if (err instanceof CloudError && err.status < 500)
          return back({ error: err.error, aadsts: err.aadsts, text: err.description });
        throw err;
      }

      // 3. The credential. Anything but a silent or default prompt wants an interactive step.
      const keys = await deps.keys();
      const interactive = (): CloudResponse =>
        prompt === 'none'
          ? back({
              error: 'interaction_required',
              aadsts: 50058,
              text: 'A silent sign-in request was sent but no user is signed in.',
            })
          : interactiveSignInPage(issueNonce(keys.nonce, now.getTime()));
      if (prompt !== undefined && prompt !== 'none') return interactive();
      const check = await checkCredential(cloud, keys, presentedCredential(req.headers), nowS);
      if (check.kind === 'stale') {
        const offered = param(q, 'sso_nonce', 256);
        const offeredFresh =
          offered !== undefined && checkNonce(keys.nonce, offered, now.getTime()).ok;
        if (!offeredFresh) {
          const again = new URLSearchParams(q);
          again.set('sso_nonce', issueNonce(keys.nonce, now.getTime()));
          const tenant = encodeURIComponent(req.tenant?.segment ?? 'common');
          const path = `/${tenant}/oauth2/${version === 2 ? 'v2.0/' : ''}authorize`;
          return redirect(`${req.baseUrl}${path}?${again.toString()}`);
        }
      }
      if (check.kind !== 'valid') {
        if (check.kind !== 'absent')
          cloud.log(`authorize: PRT credential ignored (${check.reason}) trace=${req.ids.traceId}`);
        return interactive();
      }

      const claims: AuthCodeClaims = {
        jti: randomUUID(),
        tid: cloud.tenant.id,
        uid: check.user.id,
        did: check.prt.did,
        sid: check.prt.sid,
        client: clientId,
        redirectUri,
        ver: version,
        ...(resourceParam !== undefined ? { resource: resourceParam } : {}),
        ...(scope !== undefined ? { scope } : {}),
        ...(challenge !== undefined ? { cc: challenge } : {}),
        authTime: check.prt.authTime,
        amr: check.prt.amr,
        iat: nowS,
        exp: nowS + AUTH_CODE_LIFETIME_S,
      };
      const url = new URL(target.href);
      url.searchParams.set('code', sealAuthCode(deps.authCodeKey, claims));
      if (state !== undefined) url.searchParams.set('state', state);
      return redirect(url.href);
    } catch (err) {
      if (err instanceof PageError) return authorizeErrorPage(err.aadsts, err.text, req.ids, now);
      throw err;
    }
  };
}
