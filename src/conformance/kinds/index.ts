// Fixture kind → handler. Each handler lives in its own file in this folder; add one line here per kind.
import type { KindHandler } from '../runner.js';

export const handlers: Record<string, KindHandler> = {};
