// Fixture kind → handler. Each handler lives in its own file in this folder; add one line here per kind.
import type { KindHandler } from '../runner.js';
import { trainStepHandler } from './train_step.js';
import { lossHandler } from './loss.js';
import { scheduleHandler } from './schedule.js';
import { collateHandler } from './collate.js';
import { statisticsHandler } from './statistics.js';
import { preprocessingHandler } from './preprocessing.js';
import { dinoBackboneHandler, dinov2BackboneHandler } from './backbone.js';
import { headHandler } from './head.js';

export const handlers: Record<string, KindHandler> = {
  train_step: trainStepHandler,
  loss: lossHandler,
  schedule: scheduleHandler,
  collate: collateHandler,
  statistics: statisticsHandler,
  preprocessing: preprocessingHandler,
  dinov2_backbone: dinov2BackboneHandler,
  dino_backbone: dinoBackboneHandler,
  head: headHandler,
};
