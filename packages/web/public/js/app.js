/**
 * The client-side router: `/` is the search page, `/compare` the compare page, `/duplicates` the near-duplicates page,
 * `/screening` the caption screening page and `/audits` the audits page; the API serves `index.html` for each. Links
 * marked `data-nav` change pages without a reload, and the back button works across pages and searches.
 */
import { getApiKey, setApiKey } from './api.js';
import { mountAudits } from './audits.js';
import { mountCompare } from './compare.js';
import { byId, h, replace } from './dom.js';
import { mountDuplicates } from './duplicates.js';
import { mountScreening } from './screening.js';
import { mountSearch } from './search.js';

/**
 * A mounted page. `update` runs when the URL changes but the page stays (a new search, back and forward).
 * @typedef {{ title: string, update?: () => void, destroy: () => void }} Page
 * @typedef {(main: HTMLElement) => Page} Mount
 */

/** @type {Record<string, Mount>} */
const ROUTES = {
  '/': mountSearch,
  '/index.html': mountSearch,
  '/audits': mountAudits,
  '/audits/': mountAudits,
  '/compare': mountCompare,
  '/duplicates': mountDuplicates,
  '/duplicates/': mountDuplicates,
  '/screening': mountScreening,
  '/screening/': mountScreening,
};

const main = byId('main', HTMLElement);
/** @type {{ mount: Mount, page: Page } | undefined} */
let current;

function route() {
  const mount = ROUTES[location.pathname] ?? mountNotFound;
  if (current?.mount === mount) {
    current.page.update?.();
    return;
  }
  current?.page.destroy();
  const page = mount(main);
  current = { mount, page };
  document.title = `${page.title} · Lookalike`;
  for (const link of document.querySelectorAll('nav a[data-nav]')) {
    const here = link instanceof HTMLAnchorElement && ROUTES[new URL(link.href).pathname] === mount;
    if (here) link.setAttribute('aria-current', 'page');
    else link.removeAttribute('aria-current');
  }
}

/** @type {Mount} */
function mountNotFound(target) {
  replace(
    target,
    h(
      'div',
      { class: 'page empty' },
      h('h1', {}, 'Page not found'),
      h('p', {}, `Nothing lives at ${location.pathname}. `, h('a', { href: '/', 'data-nav': true }, 'Go to search')),
    ),
  );
  return { title: 'Not found', destroy: () => undefined };
}

document.addEventListener('click', (event) => {
  if (event.defaultPrevented || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey)
    return;
  const link = event.target instanceof Element ? event.target.closest('a[data-nav]') : null;
  if (!(link instanceof HTMLAnchorElement) || link.target) return;
  const url = new URL(link.href);
  if (url.origin !== location.origin) return;
  event.preventDefault();
  const before = current?.mount;
  if (url.pathname + url.search !== location.pathname + location.search) history.pushState(null, '', url);
  route();
  if (current?.mount !== before) main.focus({ preventScroll: true });
  window.scrollTo({ top: 0 });
});
window.addEventListener('popstate', route);

// The API key, for deployments that protect reads too (API_KEYS); kept in this tab's session storage only.
const keyButton = byId('api-key-button', HTMLButtonElement);
const keyDialog = byId('api-key-dialog', HTMLDialogElement);
const keyInput = byId('api-key-input', HTMLInputElement);
function showKeyState() {
  const set = Boolean(getApiKey());
  keyButton.classList.toggle('is-set', set);
  keyButton.textContent = set ? 'API key set' : 'API key';
}
keyButton.addEventListener('click', () => {
  keyInput.value = getApiKey();
  keyDialog.returnValue = '';
  keyDialog.showModal();
});
keyDialog.addEventListener('close', () => {
  if (keyDialog.returnValue === 'save') setApiKey(keyInput.value.trim());
  else if (keyDialog.returnValue === 'forget') setApiKey('');
  else return;
  showKeyState();
  current?.page.update?.();
});
showKeyState();

route();
