/**
 * Domain types shared by every Lookalike package. Vectors are `Float32Array`s; ids of images are the lowercase hex
 * sha256 of their bytes, so the same file always maps to the same point.
 *
 * One file over 400 lines on purpose: the shared vocabulary, types and constants only, no behaviour; one place
 * to read what a payload, an audit or a job result holds.
 */

/** The two image towers every image is embedded with. */
export const ENCODER_ROLES = ['robust', 'clean'] as const;
/** `robust`: the FARE fine-tuned tower; `clean`: the original CLIP tower it is measured against. */
export type EncoderRole = (typeof ENCODER_ROLES)[number];

/** How pixels become a model input: CLIP's resize-shortest-side, centre crop, scale to [0,1], normalise. */
export interface PreprocessSpec {
  /** Side of the square model input, in pixels. */
  size: number;
  /** Per-channel mean (RGB) subtracted after scaling to [0,1]. */
  mean: readonly [number, number, number];
  /** Per-channel standard deviation (RGB) divided by after subtracting the mean. */
  std: readonly [number, number, number];
  interpolation: 'bicubic' | 'bilinear';
  /** Only CLIP's rule is supported: scale so the shortest side equals `size`, then centre-crop. */
  resize: 'shortest';
}

/**
 * How the resize of {@link PreprocessSpec} is carried out. `exact`: the image is decoded at full size and resized
 * with a bit-for-bit port of Pillow's resampling (what the Python training and parity fixtures do). `fast`: libvips
 * resizes while it decodes (JPEG DCT scaling, then an anti-aliased kernel of the same family); measured per image
 * against `exact`, the committed towers' embeddings keep a cosine of at least 0.999.
 */
export const PREPROCESS_MODES = ['fast', 'exact'] as const;
/** One of {@link PREPROCESS_MODES}. */
export type PreprocessMode = (typeof PREPROCESS_MODES)[number];

/**
 * A batch of images in pixel space, `[N, 3, H, W]` row-major, values in [0, 1], before normalisation. Attacks work
 * in this space; encoders normalise internally so that search and attacks share one path.
 */
export interface PixelBatch {
  data: Float32Array;
  n: number;
  height: number;
  width: number;
}

/** Which model and which preprocessing produced a vector; a change in either means the vector is stale. */
export interface EmbeddingProvenance {
  modelId: string;
  preprocessHash: string;
}

/** Scalar values allowed in payload labels and metadata (these are what filters can match). */
export type FieldValue = string | number | boolean;

/** What Lookalike knows about one catalog image. */
export interface ImageRecord {
  /** Lowercase hex sha256 of the original bytes. */
  id: string;
  /** Where the bytes came from: a path relative to an ingest root, a URL, or `upload:<filename>`. */
  source: string;
  /** Decoded format, e.g. `jpeg`. */
  format: string;
  /** Upright width and height (after EXIF orientation). */
  width: number;
  height: number;
  /** Size of the original file in bytes. */
  bytes: number;
  caption?: string;
  /** Categorical labels, e.g. `{ part: 'gear', defect: 'crack' }`; used by filters and by audit precision@k. */
  labels?: Record<string, FieldValue | null>;
  /** Free-form metadata from the ingest manifest. */
  metadata?: Record<string, FieldValue | null>;
  /** ISO-8601 time of the first successful ingest. */
  ingestedAt: string;
  /** Its near-duplicate group, when ingest found it within the duplicate threshold of another image. */
  duplicates?: DuplicateRecord;
  /** How ingest screened its caption against the image (SafeCLIP), when it came with one. */
  screening?: CaptionScreening;
  /** Its perceptual quality, when a quality head scored it at ingest. */
  quality?: QualityScore;
}

/** How a person reviewed a member of a near-duplicate group: the one to keep, or a copy marked as a duplicate. */
export const DUPLICATE_REVIEWS = ['kept', 'duplicate'] as const;
/** One of {@link DUPLICATE_REVIEWS}. */
export type DuplicateReview = (typeof DUPLICATE_REVIEWS)[number];

/**
 * Where an image stands among its near-duplicates. Ingest looks each new image up in the duplicate tower's space; one
 * within the calibrated same-item threshold of a stored image joins that image's group when the group's first image is
 * within it too (groups never grow by chaining), and a stored image that had no group becomes the first of one.
 * Grouping never deletes anything.
 */
export interface DuplicateRecord {
  /** The group: the id of its first stored image. */
  group: string;
  /** 1 − cos to {@link DuplicateRecord.nearest} in the tower's space when it joined; 0 for the group's first image. */
  distance: number;
  /** The image it was found closest to when it joined; absent on the group's first image. */
  nearest?: string;
  /** The tower whose distance grouped it. */
  tower: EncoderRole;
  /** The same-item threshold it was grouped under. */
  threshold: number;
  /** The review, once a person made one (`POST /v1/duplicates/{group}/review`). */
  review?: DuplicateReview;
  /** ISO-8601 time of that review. */
  reviewedAt?: string;
}

/**
 * What screening made of an image's caption: `pending` until the collection holds enough captioned images to judge,
 * then `trusted` or `suspicious` (its similarity to the image below the trust boundary of the collection's mixture),
 * or `withdrawn` once a person rejected the caption.
 */
export const CAPTION_VERDICTS = ['pending', 'trusted', 'suspicious', 'withdrawn'] as const;
/** One of {@link CAPTION_VERDICTS}. */
export type CaptionVerdict = (typeof CAPTION_VERDICTS)[number];

/** How a person reviewed a screened caption: accepted (it is trusted) or rejected (it is withdrawn). */
export const CAPTION_REVIEWS = ['accepted', 'rejected'] as const;
/** One of {@link CAPTION_REVIEWS}. */
export type CaptionReview = (typeof CAPTION_REVIEWS)[number];

/**
 * A captioned image's screening (SafeCLIP): the cosine similarity of its caption, embedded by the text tower, to the
 * image in each image tower's space, and the verdict of the collection's two-component mixture over the screening
 * tower's similarities. Screening never deletes anything: a suspicious image is left out of text search until a
 * person accepts it, and a rejected caption is kept here, withdrawn from the payload's `caption`.
 */
export interface CaptionScreening {
  /** cos(image, caption) in each image tower's space. */
  similarity: Record<EncoderRole, number>;
  /** The tower whose similarity the verdict is about. */
  tower: EncoderRole;
  /** The text tower that embedded the caption. */
  textModel: string;
  verdict: CaptionVerdict;
  /**
   * The clean component's probability at this similarity (absent while pending), under the fit that gave the verdict:
   * a refit rewrites a pair only when its verdict changes.
   */
  probability?: number;
  /** The similarity below which the mixture that judged it calls a pair suspicious (absent while pending). */
  boundary?: number;
  /** Why it is suspicious, or why it is still pending, in a sentence. */
  reason?: string;
  /** When the mixture that judged it was fitted. */
  fittedAt?: string;
  /** The review, once a person made one (`POST /v1/screening/{id}/review`). */
  review?: CaptionReview;
  /** ISO-8601 time of that review. */
  reviewedAt?: string;
  /** The caption a rejection withdrew from the payload. */
  withdrawnCaption?: string;
}

/** What a quality head made of an image: `low` when its score is under the head's threshold, `ok` otherwise. */
export const QUALITY_GRADES = ['ok', 'low'] as const;
/** One of {@link QUALITY_GRADES}. */
export type QualityGrade = (typeof QUALITY_GRADES)[number];

/**
 * An image's perceptual quality (PerceptCLIP-style: one image tower with LoRA adapters and an MLP head): 1 for a sharp, well
 * exposed, clean photo, 0 for an unusable one (out of focus, motion-blurred, noisy, compressed hard, badly exposed or
 * flat). Scoring never deletes anything: a `low` image is flagged, and search leaves it out only when asked to.
 */
export interface QualityScore {
  /** The head's score, in [0, 1]. */
  score: number;
  /** `low` when the score is under {@link QualityScore.threshold}. */
  grade: QualityGrade;
  /** The threshold the grade was given under (the head's, fitted on a tuning set, unless configured). */
  threshold: number;
  /** The quality head that scored it (its model id). */
  model: string;
  /** The image tower the quality model was made from (and whose pixels it reads). */
  tower: EncoderRole;
}

/** What a vector store keeps beside the vectors of a point. */
export interface PointPayload extends ImageRecord {
  /** Provenance of each named vector. */
  embeddings: Record<EncoderRole, EmbeddingProvenance>;
}

/** A point as written to a vector store: one image, one vector per encoder role. */
export interface Point {
  id: string;
  vectors: Record<EncoderRole, Float32Array>;
  payload: PointPayload;
}

/** A point as read back; vectors only when asked for. */
export interface StoredPoint {
  id: string;
  payload: PointPayload;
  vectors?: Record<EncoderRole, Float32Array>;
}

/** One nearest-neighbour result. `score` is the cosine similarity (higher is closer). */
export interface SearchHit {
  id: string;
  score: number;
  payload: PointPayload;
}

/** Summary metrics of one encoder at one attack budget. */
export interface AuditMetrics {
  encoder: EncoderRole;
  /** ℓ∞ (or ℓ2) radius in [0,1] pixel units, e.g. 4/255. */
  epsilon: number;
  k: number;
  /** Mean |top-k(clean query) ∩ top-k(attacked query)| / k. */
  overlapAtK: number;
  /** Fraction of queries whose clean top-1 is still top-1 after the attack. */
  top1Retention: number;
  /** Mean 1-based rank of the clean top-1 in the attacked ranking (capped at the search depth). */
  meanRankOfCleanTop1: number;
  /** Mean 1 − cos(φ(x+δ), φ(x)). */
  cosineDrift: number;
  /**
   * Label precision@k, same part and defect: for each labelled query, the share of its top-k hits (itself left out)
   * whose labels.part and labels.defect both equal the query's, for the clean query and the attacked one; the mean
   * over labelled queries. A hit without those labels counts as not sharing. Absent when no query has labels.
   */
  precisionAtK?: { clean: number; attacked: number };
  /** The same with labels.defect alone (same defect, any part). */
  defectPrecisionAtK?: { clean: number; attacked: number };
  /** Same-defect precision@k over the defective queries only (labels.defect ≠ "none"); absent when there are none. */
  defectivePrecisionAtK?: { clean: number; attacked: number };
  /**
   * What the label precisions average over: `labelled` queries (with part and defect), of which `defective`;
   * `unlabelled` queries left out of them; `unlabelledHits`, the top-k hits of the labelled queries that carry no
   * part/defect labels (counted as not sharing), summed. Absent only in audits made before it was added.
   */
  labelCounts?: {
    labelled: number;
    defective: number;
    unlabelled: number;
    unlabelledHits: { clean: number; attacked: number };
  };
  /** Fraction of targeted attacks whose target entered the top-k, when targeted attacks ran. */
  targetedSuccessAtK?: number;
}

/** The labels the audit's precision@k compares, and the demo prints: an image's part and defect. */
export interface PartDefect {
  part: string;
  /** `none` for an image without a defect. */
  defect: string;
}

/** What one attack did to one query's retrieval with one encoder at one budget. */
export interface QueryOutcome {
  queryId: string;
  encoder: EncoderRole;
  epsilon: number;
  /** The attack's loss at the returned image: 1 − cos(φ(x+δ), φ(x)). */
  loss: number;
  /** 1 − cos(φ(x+δ), φ(x)) measured on the search path's embedding. */
  cosineDrift: number;
  /** Top-k ids of the clean query and of the attacked query (the query's own point left out). */
  cleanTopK: string[];
  attackedTopK: string[];
  overlapAtK: number;
  top1Retained: boolean;
  /** 1-based rank of the clean top-1 among the attacked results; depth + 1 when not found. */
  rankOfCleanTop1: number;
  /** The query's part and defect; absent when it lacks either (then it has no precisions below). */
  labels?: PartDefect;
  /** Share of the top-k with the query's part and defect, clean and attacked (see {@link AuditMetrics}). */
  precisionClean?: number;
  precisionAttacked?: number;
  /** Share of the top-k with the query's defect, clean and attacked. */
  defectPrecisionClean?: number;
  defectPrecisionAttacked?: number;
  /** Top-k hits without part/defect labels (counted as not sharing), clean and attacked. */
  unlabelledHits?: { clean: number; attacked: number };
  /** A targeted attack toward another image of another class, when this query had one. */
  targeted?: { targetId: string; success: boolean; rank: number; cosine: number };
}

/** A neighbour shown in a report example. */
export interface ExampleHit {
  id: string;
  score: number;
  caption?: string;
  /** Small JPEG data URL. */
  thumbnail?: string;
}

/** One query shown in the report: its images and neighbours before and after the attack, per encoder. */
export interface AuditExample {
  queryId: string;
  caption?: string;
  epsilon: number;
  /** The clean query as the encoder sees it (PNG data URL). */
  clean: string;
  byEncoder: Partial<
    Record<
      EncoderRole,
      {
        /** PNG data URLs of the adversarial image and of the perturbation scaled from [−ε, ε] to [0, 1]. */
        adversarial: string;
        perturbation: string;
        before: ExampleHit[];
        after: ExampleHit[];
      }
    >
  >;
}

/** The two kinds of 2AFC triplet: the re-render against the item's edited twin, or against another item of the part. */
export type TripletKind = 'twin' | 'same part';

/** One 2AFC decision of one tower: is the reference closer to its re-render than to the other image? */
export interface TwoAfcOutcome {
  /** Index of the triplet in the audit's seeded sequence. */
  index: number;
  kind: TripletKind;
  encoder: EncoderRole;
  norm: 'linf' | 'l2';
  epsilon: number;
  /** cos(ref, other) − cos(ref, re-render): the decision is right when it is negative. */
  cleanMargin: number;
  /** The margin with the reference attacked (the attack's best: the largest margin it found). */
  attackedMargin: number;
}

/** What an ε = 4/255 upload could do to one tower's duplicate decision on one triplet. */
export interface DuplicateAttackOutcome {
  index: number;
  encoder: EncoderRole;
  /** The duplicate threshold used (the tower's calibrated `same item` threshold). */
  threshold: number;
  /** Distance of the re-render to the reference, clean and with the re-render pushed away from it. */
  duplicate: { clean: number; attacked: number };
  /** Distance of the other image to the reference, clean and with the other image pulled toward it. */
  impostor: { clean: number; attacked: number };
}

/** 2AFC accuracy of one tower under one attack budget, overall and by kind of triplet. */
export interface TwoAfcMetrics {
  encoder: EncoderRole;
  norm: 'linf' | 'l2';
  epsilon: number;
  triplets: number;
  clean: number;
  attacked: number;
  byKind: Partial<Record<TripletKind, { triplets: number; clean: number; attacked: number }>>;
}

/** How often an attacked upload changed one tower's duplicate decision. */
export interface DuplicateAttackMetrics {
  encoder: EncoderRole;
  epsilon: number;
  threshold: number;
  /** Re-renders the tower called duplicates, and those an attack pushed over the threshold. */
  hide: { eligible: number; succeeded: number };
  /** Other images the tower kept apart, and those an attack pulled under the threshold. */
  forge: { eligible: number; succeeded: number };
}

/** A 2AFC decision an attack flipped, with its four images (PNG data URLs, as the tower sees them). */
export interface TwoAfcExample {
  index: number;
  kind: TripletKind;
  encoder: EncoderRole;
  norm: 'linf' | 'l2';
  epsilon: number;
  reference: string;
  adversarial: string;
  same: string;
  other: string;
  cleanMargin: number;
  attackedMargin: number;
}

/**
 * The towers as a perceptual metric, attacked: 2AFC on triplets the generator renders (a reference, a re-render of
 * the same item, and its edited twin or another item of the same part), APGD on the binary margin loss perturbing
 * only the reference (Croce et al.), and attacks on the duplicate decision.
 */
export interface PerceptualAudit {
  /** The seeded triplets: seed, count, side of the rendered images, and how many of each kind. */
  triplets: { seed: number; count: number; size: number; kinds: Partial<Record<TripletKind, number>> };
  twoAfc: TwoAfcMetrics[];
  /** Per tower; absent for a tower without a distance calibration (`uncalibrated` says why). */
  duplicates: DuplicateAttackMetrics[];
  uncalibrated?: Partial<Record<EncoderRole, string>>;
  perTriplet: TwoAfcOutcome[];
  perDuplicate: DuplicateAttackOutcome[];
  examples: TwoAfcExample[];
  cost: { seconds: number; gradientEvaluations: number };
}

/**
 * One quality decision of one tower's quality model under attack: a good photo (undistorted) pushed under the
 * threshold, or an unusable one (one distortion at severity ≥ 0.6) pushed over it, at ℓ∞ `epsilon`.
 */
export interface QualityAttackOutcome {
  /** Index of the image in the audit's seeded sequence. */
  index: number;
  /** `good`: the attack lowers its score; `bad`: the attack raises it. */
  kind: 'good' | 'bad';
  /** The distortions of a bad photo (with their severities); empty for a good one. */
  distortions: { kind: string; severity: number }[];
  /** Its quality target, Π (1 − severity). */
  target: number;
  encoder: EncoderRole;
  epsilon: number;
  threshold: number;
  cleanScore: number;
  /** The score the attack reached (the lowest for a good photo, the highest for a bad one). */
  attackedScore: number;
}

/** What an attack does to one tower's quality gate: the share of its right decisions it flips. */
export interface QualityAttackMetrics {
  encoder: EncoderRole;
  /** The quality model attacked. */
  model: string;
  epsilon: number;
  threshold: number;
  /** Per kind of photo: how many, how many the gate graded right, and how many of those the attack flipped. */
  good: { images: number; correct: number; flipped: number };
  bad: { images: number; correct: number; flipped: number };
  /** Flipped ÷ right decisions, good and bad photos together. */
  flippedShare: number;
  /** Mean |attacked − clean score|. */
  meanShift: number;
}

/** A flipped quality decision kept with its images (PNG data URLs). */
export interface QualityAttackExample {
  index: number;
  kind: 'good' | 'bad';
  encoder: EncoderRole;
  clean: string;
  adversarial: string;
  cleanScore: number;
  attackedScore: number;
  threshold: number;
}

/** The quality part of an audit: each tower's quality model, its gate attacked in pixel space. */
export interface QualityAudit {
  /** The seeded photos: seed, how many, side of the rendered images. */
  images: { seed: number; count: number; size: number };
  metrics: QualityAttackMetrics[];
  /** Towers with no quality model, and why. */
  missing?: Partial<Record<EncoderRole, string>>;
  perImage: QualityAttackOutcome[];
  examples: QualityAttackExample[];
  cost: { seconds: number; gradientEvaluations: number };
}

/** The result of one robustness audit. Versioned: readers check `schemaVersion`. */
export interface AuditResult {
  schemaVersion: 1;
  id: string;
  startedAt: string;
  finishedAt: string;
  attack: {
    name: 'pgd' | 'apgd';
    norm: 'linf' | 'l2';
    steps: number;
    restarts: number;
    stepSize?: number;
    seed: number;
  };
  models: Record<EncoderRole, EmbeddingProvenance>;
  queries: number;
  epsilons: number[];
  k: number;
  /** Ranks searched to place the clean top-1 after the attack. */
  depth: number;
  /** Points in the catalog when the audit ran. */
  catalogSize: number;
  /** Wall time and work: seconds overall and per query per encoder (all ε), gradient evaluations per image. */
  cost: { seconds: number; secondsPerQueryPerEncoder: number; gradientEvaluations: number };
  metrics: AuditMetrics[];
  perQuery: QueryOutcome[];
  examples: AuditExample[];
  /** The towers as a perceptual metric (absent in audits made before it, or run with no triplets). */
  perceptual?: PerceptualAudit;
  /** The quality gate under attack, when the audit ran it. */
  quality?: QualityAudit;
}
