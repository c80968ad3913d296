/** Number, size and date formatting shared by the pages. Pure: no DOM access. */

/**
 * A cosine similarity with three decimals (`0.987`); enough to tell near-duplicates apart.
 * @param {number} score
 */
export function formatScore(score) {
  return score.toFixed(3);
}

/**
 * A distance `1 − cos` with four decimals (`0.0123`); one above 0 too small for them reads `< 0.0001`, not `0.0000`.
 * @param {number} distance
 */
export function formatDistance(distance) {
  const fixed = distance.toFixed(4);
  return distance > 0 && Number(fixed) === 0 ? '< 0.0001' : fixed;
}

/**
 * A fraction in [0, 1] as a percentage with no decimals (`82%`).
 * @param {number} value
 */
export function formatPercent(value) {
  return `${Math.round(value * 100)}%`;
}

/**
 * An attack budget in pixel units, written as the n/255 steps audits use (`4/255`), or as a decimal otherwise.
 * @param {number} epsilon
 */
export function formatEpsilon(epsilon) {
  if (epsilon === 0) return '0';
  const steps = epsilon * 255;
  const rounded = Math.round(steps);
  if (rounded > 0 && Math.abs(steps - rounded) < 1e-6) return `${rounded}/255`;
  return String(Number(epsilon.toPrecision(3)));
}

/**
 * @param {number} bytes
 */
export function formatBytes(bytes) {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KiB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
}

/**
 * A local date and time to the minute, `2025-03-14 03:00`, sortable and unambiguous.
 * @param {string} iso
 */
export function formatDateTime(iso) {
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return iso;
  /** @param {number} n */
  const two = (n) => String(n).padStart(2, '0');
  return (
    `${date.getFullYear()}-${two(date.getMonth() + 1)}-${two(date.getDate())} ` +
    `${two(date.getHours())}:${two(date.getMinutes())}`
  );
}

/**
 * The time between two ISO instants, to the largest sensible unit (`45 s`, `12 min`, `1 h 5 min`).
 * @param {string} startIso
 * @param {string} endIso
 */
export function formatDuration(startIso, endIso) {
  const ms = new Date(endIso).getTime() - new Date(startIso).getTime();
  if (!Number.isFinite(ms) || ms < 0) return '';
  const seconds = Math.round(ms / 1000);
  if (seconds < 60) return `${seconds} s`;
  const minutes = Math.round(seconds / 60);
  if (minutes < 60) return `${minutes} min`;
  return `${Math.floor(minutes / 60)} h ${minutes % 60} min`;
}

/**
 * `1 restart`, `3 restarts`.
 * @param {number} n
 * @param {string} one
 * @param {string} [many]
 */
export function plural(n, one, many = `${one}s`) {
  return `${n} ${n === 1 ? one : many}`;
}
