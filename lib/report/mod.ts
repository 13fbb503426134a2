// Markdown pages of the results folder and the lambda-sweep aggregation, beside the paper's numbers.

export {
  ece100,
  formatDuration,
  type IndexEntry,
  type IndexPage,
  KEY_NUMBER_SOURCES,
  type KeyNumbers,
  keyNumbers,
  resultsIndex,
  runPage,
  type RunPageInput,
} from "./pages.ts";
export {
  aggregateSweep,
  formatLambda,
  meanStd,
  paperPoints,
  type PaperSweep,
  type Stat,
  sweepFigures,
  type SweepMetric,
  sweepPoints,
  type SweepRow,
  type SweepRun,
  sweepTable,
} from "./sweep.ts";
export { type SeedRun, seedsTable, type SeedStat, seedStat } from "./seeds.ts";
export * from "./paper.ts";
