/**
 * The Lookalike API as the UI uses it. Every failure becomes an {@link ApiError} carrying the API's own
 * `error.code` and `error.message`, so the page can show what the server said.
 *
 * Over 400 lines on purpose: more than half of them are JSDoc (the types of the API's answers, which the UI's type
 * check reads); the calls themselves are one small function per endpoint.
 */

/** @typedef {import('./state.js').Filter} Filter */
/** @typedef {'robust' | 'clean'} EncoderRole */
/** @typedef {string | number | boolean | null} FieldValue */
/**
 * @typedef {object} Payload
 * @property {string} id
 * @property {string} source
 * @property {string} format
 * @property {number} width
 * @property {number} height
 * @property {number} bytes
 * @property {string} [caption]
 * @property {Record<string, FieldValue>} [labels]
 * @property {Record<string, FieldValue>} [metadata]
 * @property {string} ingestedAt
 * @property {DuplicateRecord} [duplicates]
 * @property {CaptionScreening} [screening]
 * @property {QualityScore} [quality]
 */
/**
 * The image's perceptual quality, scored at ingest: `low` when the score is under the threshold it was graded under.
 * @typedef {object} QualityScore
 * @property {number} score
 * @property {'ok' | 'low'} grade
 * @property {number} threshold
 * @property {string} model
 * @property {EncoderRole} tower
 */
/**
 * Where an image stands among its near-duplicates: its group (the id of the group's first image), its distance
 * `1 − cos` to the image it was nearest when it joined (0 for the first image) and the review, if any.
 * @typedef {object} DuplicateRecord
 * @property {string} group
 * @property {number} distance
 * @property {string} [nearest]
 * @property {EncoderRole} tower
 * @property {number} threshold
 * @property {'kept' | 'duplicate'} [review]
 * @property {string} [reviewedAt]
 */
/** @typedef {{ id: string, payload: Payload & { duplicates: DuplicateRecord }, thumbnailUrl: string, url: string }} DuplicateMember */
/**
 * A near-duplicate group, its first image first.
 * @typedef {object} DuplicateGroup
 * @property {string} id
 * @property {number} size
 * @property {string} [kept]
 * @property {number} unreviewed
 * @property {string} latest
 * @property {DuplicateMember[]} members
 */
/**
 * A page of groups: `total` groups and `images` images in all, and how ingest groups now (`null`: it does not).
 * @typedef {{ groups: DuplicateGroup[], total: number, images: number, grouping: { tower: EncoderRole, threshold: number } | null }} DuplicateList
 */
/** @typedef {'pending' | 'trusted' | 'suspicious' | 'withdrawn'} CaptionVerdict */
/** @typedef {'accepted' | 'rejected'} CaptionReview */
/**
 * What caption screening made of an image's caption: its similarity to the image in each tower's space, the verdict
 * the mixture (or a person) gave it in the screening `tower`, and the review, if any. A rejected caption is moved from
 * the payload's `caption` to `withdrawnCaption`.
 * @typedef {object} CaptionScreening
 * @property {{ robust: number, clean: number }} similarity
 * @property {EncoderRole} tower
 * @property {string} textModel
 * @property {CaptionVerdict} verdict
 * @property {number} [probability]
 * @property {number} [boundary]
 * @property {string} [reason]
 * @property {string} [fittedAt]
 * @property {CaptionReview} [review]
 * @property {string} [reviewedAt]
 * @property {string} [withdrawnCaption]
 */
/** @typedef {{ weight: number, mean: number, sd: number }} MixtureComponent */
/**
 * The collection's two-component mixture over caption similarities; `boundary` is the similarity below which a
 * caption is suspicious (`null`: the tower does not separate matching captions from unrelated ones, all are trusted).
 * @typedef {object} ScreeningModel
 * @property {EncoderRole} tower
 * @property {string} textModel
 * @property {string} imageModel
 * @property {number} threshold
 * @property {string} fittedAt
 * @property {number} count
 * @property {MixtureComponent} low
 * @property {MixtureComponent} high
 * @property {number} separation
 * @property {number} bicGain
 * @property {'unrelated' | 'free'} lowFrom
 * @property {number} unrelatedPairs
 * @property {boolean} separates
 * @property {number | null} boundary
 */
/** @typedef {{ id: string, payload: Payload & { screening: CaptionScreening }, thumbnailUrl: string, url: string }} ScreenedImage */
/**
 * A page of screened images of one verdict, the lowest similarity first, with the policy and mixture that judged
 * them (`model` is `null` before the first fit) and how many images hold each verdict.
 * @typedef {object} ScreeningList
 * @property {{ tower: EncoderRole, threshold: number, minCount: number }} policy
 * @property {ScreeningModel | null} model
 * @property {Record<CaptionVerdict, number>} counts
 * @property {CaptionVerdict} verdict
 * @property {number} total
 * @property {ScreenedImage[]} images
 */
/** @typedef {{ id: string, score: number, payload: Payload, thumbnailUrl?: string }} Hit */
/** @typedef {{ encoder: EncoderRole, k: number, tookMs: number, hits: Hit[] }} SearchResponse */
/** @typedef {{ fields: Record<string, string[]> }} Facets */
/**
 * @typedef {object} AuditSummary
 * @property {string} id
 * @property {string} startedAt
 * @property {string} finishedAt
 * @property {{ name: string, norm: 'linf' | 'l2', steps: number, restarts: number, stepSize?: number, seed: number }} attack
 * @property {number} queries
 * @property {{ encoder: EncoderRole, epsilon: number, overlapAtK: number, top1Retention: number, partDefectAtK?: number, defectiveDefectAtK?: number }[]} headline
 * @property {{ encoder: EncoderRole, norm: 'linf' | 'l2', epsilon: number, clean: number, attacked: number }[]} [twoAfc]
 */
/** @typedef {{ imageId: string } | { text: string } | { file: File }} SearchInput */
/** @typedef {{ imageId: string } | { file: File }} DistanceSide */
/**
 * @typedef {object} TowerDistance
 * @property {string} model
 * @property {number} distance
 * @property {'same item' | 'same kind' | 'different' | null} verdict
 * @property {{ thresholds: { sameItem: number, sameKind: number }, sameKindSeparable: boolean, fitSeed: number, heldOut: { seed: number, sameItem: { recall: number, specificity: number }, sameKind: { recall: number, specificity: number }, accuracy: number }, createdAt: string } | null} calibration
 * @property {string} [uncalibrated]
 */
/** @typedef {{ verdict: TowerDistance['verdict'], towers: { robust: TowerDistance, clean: TowerDistance }, tookMs: number }} DistanceResponse */
/**
 * @typedef {{ k: number, encoder: EncoderRole, filter?: Filter | undefined, quality?: import('./state.js').QualityMode }} SearchOptions
 */

const KEY_STORAGE = 'lookalike.apiKey';

/** An API call that failed: `status` 0 means the server could not be reached. */
export class ApiError extends Error {
  /**
   * @param {string} message
   * @param {{ status: number, code: string, retryAfter?: number | undefined }} details
   */
  constructor(message, { status, code, retryAfter }) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
    this.retryAfter = retryAfter;
  }
}

/** The API key kept for this browser tab, or an empty string. */
export function getApiKey() {
  try {
    return sessionStorage.getItem(KEY_STORAGE) ?? '';
  } catch {
    return '';
  }
}

/**
 * Keeps (or with an empty string forgets) the API key for this tab; it is sent as `Authorization: Bearer`.
 * @param {string} key
 */
export function setApiKey(key) {
  try {
    if (key) sessionStorage.setItem(KEY_STORAGE, key);
    else sessionStorage.removeItem(KEY_STORAGE);
  } catch {
    // Storage can be disabled; the key then lasts until the page is reloaded, which is the best we can do.
  }
}

/**
 * @param {string} path
 * @param {RequestInit} [init]
 * @returns {Promise<unknown>}
 */
async function call(path, init = {}) {
  const headers = new Headers(init.headers);
  headers.set('accept', 'application/json');
  const key = getApiKey();
  if (key) headers.set('authorization', `Bearer ${key}`);
  /** @type {Response} */
  let response;
  try {
    response = await fetch(path, { ...init, headers });
  } catch (error) {
    if (error instanceof DOMException && error.name === 'AbortError') throw error;
    throw new ApiError('The Lookalike API could not be reached. Check that the server is running.', {
      status: 0,
      code: 'NETWORK',
    });
  }
  const type = response.headers.get('content-type') ?? '';
  const body = type.includes('application/json') ? /** @type {unknown} */ (await response.json()) : undefined;
  if (response.ok) return body;
  const error = /** @type {{ error?: { code?: unknown, message?: unknown } } | undefined} */ (body)?.error;
  const retryAfter = Number(response.headers.get('retry-after'));
  throw new ApiError(
    typeof error?.message === 'string' ? error.message : `The API answered ${response.status} ${response.statusText}.`,
    {
      status: response.status,
      code: typeof error?.code === 'string' ? error.code : `HTTP_${response.status}`,
      retryAfter: Number.isFinite(retryAfter) && retryAfter > 0 ? retryAfter : undefined,
    },
  );
}

/**
 * POST /v1/search by image id, text or an uploaded file.
 * @param {SearchInput} input
 * @param {SearchOptions} options
 * @param {AbortSignal} [signal]
 * @returns {Promise<SearchResponse>}
 */
export async function search(input, options, signal) {
  if ('file' in input) {
    const form = new FormData();
    form.set('image', input.file, input.file.name || 'pasted-image');
    form.set('k', String(options.k));
    form.set('encoder', options.encoder);
    if (options.filter) form.set('filter', JSON.stringify(options.filter));
    if (options.quality && options.quality !== 'any') form.set('quality', options.quality);
    return /** @type {Promise<SearchResponse>} */ (call('/v1/search', { method: 'POST', body: form, signal }));
  }
  const body = {
    ...input,
    k: options.k,
    encoder: options.encoder,
    ...(options.filter && { filter: options.filter }),
    ...(options.quality && options.quality !== 'any' && { quality: options.quality }),
  };
  return /** @type {Promise<SearchResponse>} */ (
    call('/v1/search', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
      signal,
    })
  );
}

/**
 * POST /v1/distance: two images, each uploaded or stored.
 * @param {DistanceSide} a
 * @param {DistanceSide} b
 * @param {AbortSignal} [signal]
 * @returns {Promise<DistanceResponse>}
 */
export async function distance(a, b, signal) {
  if ('imageId' in a && 'imageId' in b) {
    return /** @type {Promise<DistanceResponse>} */ (
      call('/v1/distance', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ aId: a.imageId, bId: b.imageId }),
        signal,
      })
    );
  }
  const form = new FormData();
  for (const [name, side] of /** @type {const} */ ([
    ['a', a],
    ['b', b],
  ])) {
    if ('file' in side) form.set(name, side.file, side.file.name || `${name}-image`);
    else form.set(`${name}Id`, side.imageId);
  }
  return /** @type {Promise<DistanceResponse>} */ (call('/v1/distance', { method: 'POST', body: form, signal }));
}

/**
 * An image from the API as a Blob, sent with the API key: for deployments that protect reads, where an `<img src>`
 * could not send the key itself.
 * @param {string} path
 * @param {AbortSignal} [signal]
 * @returns {Promise<Blob>}
 */
export async function fetchImage(path, signal) {
  const response = await fetch(path, { headers: { authorization: `Bearer ${getApiKey()}` }, signal });
  if (!response.ok)
    throw new ApiError(`The image at ${path} could not be loaded.`, { status: response.status, code: 'IMAGE' });
  return response.blob();
}

/**
 * GET /v1/images/:id
 * @param {string} id
 * @param {AbortSignal} [signal]
 * @returns {Promise<{ id: string, payload: Payload }>}
 */
export async function getImage(id, signal) {
  return /** @type {Promise<{ id: string, payload: Payload }>} */ (call(imagePath(id), { signal }));
}

/**
 * GET /v1/facets
 * @param {AbortSignal} [signal]
 * @returns {Promise<Facets>}
 */
export async function getFacets(signal) {
  return /** @type {Promise<Facets>} */ (call('/v1/facets', { signal }));
}

/**
 * GET /v1/audits (`{ audits: [...] }`; a bare array is read too), newest first.
 * @param {AbortSignal} [signal]
 * @returns {Promise<AuditSummary[]>}
 */
export async function listAudits(signal) {
  const body = /** @type {AuditSummary[] | { audits: AuditSummary[] }} */ (await call('/v1/audits', { signal }));
  const audits = Array.isArray(body) ? body : body.audits;
  return [...audits].sort((a, b) => b.startedAt.localeCompare(a.startedAt));
}

/**
 * GET /v1/duplicates: a page of near-duplicate groups, newest first.
 * @param {{ limit: number, offset: number, unreviewed: boolean }} options
 * @param {AbortSignal} [signal]
 * @returns {Promise<DuplicateList>}
 */
export async function listDuplicates({ limit, offset, unreviewed }, signal) {
  const query = new URLSearchParams({ limit: String(limit), offset: String(offset), unreviewed: String(unreviewed) });
  return /** @type {Promise<DuplicateList>} */ (call(`/v1/duplicates?${query}`, { signal }));
}

/**
 * POST /v1/duplicates/:group/review: keeps `keep` and marks the group's other members as duplicates (a write).
 * @param {string} group
 * @param {string} keep
 * @param {AbortSignal} [signal]
 * @returns {Promise<DuplicateGroup>}
 */
export async function reviewDuplicates(group, keep, signal) {
  return /** @type {Promise<DuplicateGroup>} */ (
    call(`${duplicatePath(group)}/review`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ keep }),
      signal,
    })
  );
}

/**
 * GET /v1/screening: a page of captioned images with this verdict, the most suspect (lowest similarity) first.
 * @param {{ verdict: CaptionVerdict, limit: number, offset: number }} options
 * @param {AbortSignal} [signal]
 * @returns {Promise<ScreeningList>}
 */
export async function listScreening({ verdict, limit, offset }, signal) {
  const query = new URLSearchParams({ verdict, limit: String(limit), offset: String(offset) });
  return /** @type {Promise<ScreeningList>} */ (call(`/v1/screening?${query}`, { signal }));
}

/**
 * POST /v1/screening/:id/review: `accepted` trusts the caption (restoring a withdrawn one), `rejected` withdraws it
 * from the payload (a write).
 * @param {string} id
 * @param {CaptionReview} review
 * @param {AbortSignal} [signal]
 * @returns {Promise<ScreenedImage>}
 */
export async function reviewCaption(id, review, signal) {
  return /** @type {Promise<ScreenedImage>} */ (
    call(`/v1/screening/${encodeURIComponent(id)}/review`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ review }),
      signal,
    })
  );
}

/** @param {string} group */
export function duplicatePath(group) {
  return `/v1/duplicates/${encodeURIComponent(group)}`;
}

/**
 * @param {string} id
 * @param {'' | '/thumbnail' | '/original'} [suffix]
 */
export function imagePath(id, suffix = '') {
  return `/v1/images/${encodeURIComponent(id)}${suffix}`;
}

/**
 * @param {string} id
 * @param {'' | '/report'} [suffix]
 */
export function auditPath(id, suffix = '') {
  return `/v1/audits/${encodeURIComponent(id)}${suffix}`;
}

/**
 * A heading and a sentence for an error, in the words a user can act on; the API's own message is kept.
 * @param {unknown} error
 * @returns {{ title: string, detail: string, code?: string }}
 */
export function describeError(error) {
  if (!(error instanceof ApiError)) {
    return { title: 'Something went wrong', detail: error instanceof Error ? error.message : String(error) };
  }
  const { status, code, message } = error;
  if (status === 0) return { title: 'API unreachable', detail: message, code };
  if (status === 401) {
    return {
      title: 'API key required',
      detail: `${message} Set a key with the “API key” button at the top right.`,
      code,
    };
  }
  if (status === 403) {
    return { title: 'Not allowed', detail: `${message} The API key in use does not grant this request.`, code };
  }
  if (status === 429) {
    const wait = error.retryAfter ? `Try again in ${error.retryAfter} s.` : 'Wait a moment and try again.';
    return { title: 'Too many requests', detail: `${message} ${wait}`, code };
  }
  return { title: status >= 500 ? 'Server error' : 'Request refused', detail: message, code };
}
