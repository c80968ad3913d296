/**
 * The Lookalike web UI: hand-written ES modules, HTML and CSS in `public/`, served as they are (no build step). The
 * API serves {@link webRoot} statically and answers every path in {@link clientRoutes} with its `index.html`, whose
 * script routes on `location.pathname`.
 */
import { fileURLToPath } from 'node:url';

/** Absolute path of the folder holding the static UI (`index.html`, `styles.css`, `js/`); the same from src and dist. */
export const webRoot: string = fileURLToPath(new URL('../public', import.meta.url));

/** Paths the client-side router renders; the server must answer each with `index.html` from {@link webRoot}. */
export const clientRoutes: readonly string[] = ['/', '/compare', '/duplicates', '/screening', '/audits'];

/**
 * The Content-Security-Policy directives the UI is written for, in helmet's `contentSecurityPolicy.directives`
 * shape: no inline scripts or styles, images from the API itself plus `blob:` (the preview of an upload) and `data:`.
 */
export const contentSecurityPolicy: Readonly<Record<string, readonly string[]>> = {
  defaultSrc: ["'self'"],
  baseUri: ["'self'"],
  scriptSrc: ["'self'"],
  scriptSrcAttr: ["'none'"],
  styleSrc: ["'self'"],
  imgSrc: ["'self'", 'data:', 'blob:'],
  connectSrc: ["'self'"],
  fontSrc: ["'self'"],
  objectSrc: ["'none'"],
  formAction: ["'self'"],
  frameAncestors: ["'self'"],
};
