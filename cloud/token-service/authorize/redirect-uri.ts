/**
 * Which redirect URIs `/authorize` sends codes to. The lab's directory registers no redirect URIs
 * for its applications, so instead of a registered list it accepts the URIs Entra's public
 * (native) clients use, and only for applications that are public clients:
 *   - `https://login.microsoftonline.com/common/oauth2/nativeclient`, exactly;
 *   - loopback URIs `http://localhost[:port]/...` and `http://127.0.0.1[:port]/...` with any port
 *     (RFC 8252 §7.3: the port of a native app's loopback listener is chosen at run time).
 * Anything else, `urn:ietf:wg:oauth:2.0:oob` included (the out-of-band flow shows the code on a
 * page; the lab leaves it out), is refused with AADSTS50011 on an error page, never redirected
 * to: a code sent to an unchecked URI is an open redirect that hands out the user's sign-in
 * (RFC 6749 §4.1.2.1, §10.15).
 */

export const NATIVE_CLIENT_REDIRECT_URI =
  'https://login.microsoftonline.com/common/oauth2/nativeclient';

/** Longest redirect URI accepted (a lab cap: codes carry the URI, sealed). */
export const MAX_REDIRECT_URI_LENGTH = 512;

const LOOPBACK_HOSTS = new Set(['localhost', '127.0.0.1']);

/**
 * The URL to redirect to, or undefined when `uri` is not one the lab sends codes to. The URI
 * must be written in its canonical form (what the WHATWG URL parser prints back, a missing root
 * path aside), so that the address checked is the address redirected to: no backslashes,
 * user-info, fragments (RFC 6749 §3.1.2) or queries to reinterpret.
 */
export function acceptedRedirectUri(uri: string, publicClient: boolean): URL | undefined {
  if (!publicClient || uri.length === 0 || uri.length > MAX_REDIRECT_URI_LENGTH) return undefined;
  let url: URL;
  try {
    url = new URL(uri);
  } catch {
    return undefined;
  }
  if (url.href !== uri && url.href !== `${uri}/`) return undefined;
  if (url.href === NATIVE_CLIENT_REDIRECT_URI) return url;
  const loopback =
    url.protocol === 'http:' &&
    LOOPBACK_HOSTS.has(url.hostname) &&
    url.username === '' &&
    url.password === '' &&
    url.search === '' &&
    url.hash === '';
  return loopback ? url : undefined;
}
