export {
  CALIBRATION_FILE,
  PAIR_KINDS,
  RELATIONS,
  calibrationSchema,
  evaluate,
  fitBoundary,
  fitThresholds,
  loadCalibration,
  saveCalibration,
  verdictOf,
  type BoundaryFit,
  type Calibration,
  type CalibrationState,
  type Evaluation,
  type KindStats,
  type LabelledDistance,
  type PairKind,
  type Relation,
} from './calibration.js';
export { CatalogPairsError, catalogPairs, type CatalogPair } from './pairs.js';
export {
  calibrateDistances,
  calibrateTower,
  cosineDistance,
  embedFiles,
  measureCatalog,
  readCatalog,
  trainingSeeds,
  type CalibrationRun,
  type EmbedDeps,
  type MeasuredCatalog,
} from './calibrate.js';
export {
  DistanceService,
  summarize,
  type CalibrationSummary,
  type DistanceDeps,
  type DistanceResult,
  type ImageRef,
  type TowerDistance,
} from './service.js';
export { renderTriplet, tripletAt, triplets, type Triplet } from './triplets.js';
export { DuplicateGroups, type DuplicateGroup, type DuplicateGroupPage, type DuplicateMember } from './duplicates.js';
