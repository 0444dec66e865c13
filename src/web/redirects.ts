import { RedirectInvalidError } from '../errors.js'

/**
 * Where a web login may send the browser back to (an open redirect would hand a phishing page
 * the member's fresh session): a path of this site, `/` when none is given, or a URL listed
 * exactly in `web.redirects`. Throws RedirectInvalidError (400) for anything else: `//evil.example`,
 * `/\evil.example` (both read as another host by browsers), any other scheme or host.
 */
export function allowedRedirect (redirect: string | undefined, listed: readonly string[]): string {
  if (redirect === undefined || redirect === '') return '/'
  // Printable ASCII only, as a Location header carries it (a path of other characters comes
  // percent-encoded); no backslash, which browsers turn into `/`, and no `//` at the start.
  if (/^\/(?!\/)[\x21-\x5b\x5d-\x7e]*$/.test(redirect)) return redirect
  // A listed URL may name a host or path in other scripts: written as a Location header carries
  // it (punycode, percent-encoding), or the callback would fail after the session was made.
  if (listed.includes(redirect)) return new URL(redirect).href
  throw new RedirectInvalidError()
}
