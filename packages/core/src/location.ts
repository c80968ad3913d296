/**
 * Where an image's bytes live, as payloads and sources record it: an http(s) URL, fetched under the SSRF rules, or
 * a local path. Every layer that must tell the two apart asks this one function.
 */
export function isUrl(location: string): boolean {
  return /^https?:\/\//i.test(location);
}
