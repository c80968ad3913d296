export * from './errors/index.js';
export * from './config.js';
export * from './filter.js';
export * from './location.js';
export type * from './ports.js';
export * from './retrieval.js';
export * from './scroll.js';
export * from './types.js';
export * from './thread-module.js';
