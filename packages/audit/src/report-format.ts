/** How the HTML report's parts write text and numbers. */

/** `s` as HTML text or an attribute value. */
export const esc = (s: unknown): string =>
  String(s).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);

/** A share as a percentage with one decimal, or a dash when there is none. */
export const pct = (x: number | undefined) => (x === undefined || Number.isNaN(x) ? '—' : `${(100 * x).toFixed(1)} %`);
