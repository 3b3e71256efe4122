/**
 * The pages `/authorize` answers instead of a redirect: the interactive sign-in page (the lab has
 * no interactive sign-in, so the page only says one is needed) and error pages for requests that
 * must not be redirected (RFC 6749 §4.1.2.1: an unknown client or an unaccepted redirect URI).
 * Everything a page shows that came from the request is capped and HTML-escaped; pages carry no
 * script (the cloud's CSP is `default-src 'none'`) and, like every cloud answer, `no-store`.
 */
import { entraTimestamp, type RequestIds } from '../../http/entra-error.ts';
import type { CloudResponse } from '../../http/server.ts';

/** HTML-escapes text for element content and quoted attribute values. */
export function escapeHtml(text: string): string {
  return text
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&#39;');
}

function page(title: string, body: string): string {
  return [
    '<!DOCTYPE html>',
    '<html lang="en"><head><meta charset="utf-8">',
    `<title>${escapeHtml(title)}</title></head>`,
    `<body>${body}</body></html>`,
    '',
  ].join('\n');
}

const HTML = 'text/html; charset=utf-8';

/**
 * The interactive sign-in page, for a request the PRT cookie did not sign in: none was sent, it
 * failed a check, or the request asked for a prompt. Deliberately the same page whichever check
 * failed (prt-protocol §6.3: ESTS ignores a bad credential rather than answering an error), so it
 * tells a caller nothing about a forged cookie. Like ESTS's login page (`$Config.bsso.nonce`,
 * prt-protocol §3 "Browser variant"), it hands out a fresh SSO nonce for a new cookie.
 */
export function interactiveSignInPage(ssoNonce: string): CloudResponse {
  return {
    status: 200,
    contentType: HTML,
    body: page(
      'Sign in to your account',
      [
        '<h1>Sign in to your account</h1>',
        '<p>Interactive sign-in is required. The lab cloud has no interactive sign-in page:',
        'use the password grant, or a browser SSO credential (x-ms-RefreshTokenCredential) signed',
        'over a fresh nonce.</p>',
        `<div id="bsso" data-sso-nonce="${escapeHtml(ssoNonce)}"></div>`,
      ].join('\n'),
    ),
  };
}

/**
 * An Entra-shaped error page (code, message, request and correlation ids, timestamp). Callers
 * pass request values in `message` through echo() (capped, control characters replaced); the page
 * escapes the whole message. `aadsts` need not be in AADSTS_CODES: pages are not CloudErrors
 * (AADSTS50011 is answered only here).
 */
export function authorizeErrorPage(
  aadsts: number,
  message: string,
  ids: RequestIds,
  now: Date,
  status = 400,
): CloudResponse {
  return {
    status,
    contentType: HTML,
    body: page(
      'Sign in to your account',
      [
        "<h1>Sorry, but we're having trouble signing you in.</h1>",
        `<p id="error">AADSTS${aadsts}: ${escapeHtml(message)}</p>`,
        `<p>Request Id: ${escapeHtml(ids.traceId)}<br>`,
        `Correlation Id: ${escapeHtml(ids.correlationId)}<br>`,
        `Timestamp: ${escapeHtml(entraTimestamp(now))}</p>`,
      ].join('\n'),
    ),
  };
}
