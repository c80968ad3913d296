export {
  PixelSpaceModel,
  lossOf,
  unitRows,
  type AttackGoal,
  type Evaluation,
  type PixelSpaceModelOptions,
} from './model.js';
export {
  runAttack,
  resolveConfig,
  project,
  type AttackConfig,
  type AttackProblem,
  type AttackResult,
} from './attack.js';
export { gaussian, seededRandom } from './random.js';
