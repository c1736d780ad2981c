// The receiver lives in src/transfer/receiver/ (one module per concern); this path stays importable.
export * from './receiver/index.js';
