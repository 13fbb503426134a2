// Every figure of a run folder and of the paper's comparisons: each a pure function from JSON-able run data
// (lib/types.ts) to one standalone SVG document.

export { accuracyFigure, lossFigure } from "./training.ts";
export { latentFigure, WEIGHT_LABEL_MIN } from "./latent.ts";
export { componentExamplesFigure, type ComponentExamplesOptions } from "./examples.ts";
export { confidenceHistogramFigure, formatEce, reliabilityFigure } from "./calibration.ts";
export { sweepFigure, type SweepFigureOptions, type SweepPoint } from "./sweep.ts";
export { type CurveKey, type RunCurve, runsCurveFigure } from "./compare.ts";
export { fitPca, type Pca, projectPca, symmetricEigen } from "./pca.ts";
export {
  composeFigure,
  type LegendItem,
  type Part,
  partFromSvg,
  plotPart,
  sideBySide,
  TAB10,
} from "./svg.ts";
