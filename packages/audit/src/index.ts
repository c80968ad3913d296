export { auditBatch, exampleEpsilon, type AuditDeps, type AuditQuery, type BatchOutcome } from './batch.js';
export { renderSvg, curveSpec, trendSpec } from './charts.js';
export { createAuditHandlers, assemble, auditIdFor, type AuditServiceDeps } from './handlers.js';
export {
  classOf,
  labelPrecision,
  overlapAtK,
  partDefectOf,
  precisionAtK,
  rankOf,
  summarize,
  summarizeDuplicates,
  summarizeTwoAfc,
  type LabelPrecision,
} from './metrics.js';
export { renderReport, headline, labelHeadline, formatEpsilon, toSummary } from './report.js';
export { selectQueries } from './select.js';
export { FileAuditStore } from './store.js';
export {
  perceptualBatch,
  twoAfcBudgets,
  TRIPLET_SIZE,
  type PerceptualBatchOutcome,
  type PerceptualDeps,
} from './perceptual.js';
export { perceptualSection, twoAfcHeadline } from './report-perceptual.js';
export {
  qualityBatch,
  qualityPhoto,
  summarizeQuality,
  flipped as qualityFlipped,
  gradedRight,
  QUALITY_EPSILON,
  QUALITY_IMAGE_SIZE,
  type QualityGate,
  type QualityDeps,
  type QualityBatchOutcome,
} from './quality.js';
export { qualitySection, qualityHeadline } from './report-quality.js';
