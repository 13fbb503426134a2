// When two runs are runs of one configuration: the same experiment and version, the same --init
// checkpoint, and the same hyperparameters, apart from the `free` ones that each run of a plan sets for
// itself (a sweep's lambda, a seed). A report pools such runs, and a seed's spread is measured over them;
// a run trained for other epochs, on a data subset or from another checkpoint is another configuration.

import type { RunRequest } from "./cli.ts";

/** A run's configuration as its manifest records it (experiments/run.ts: buildManifest). */
export interface RunConfiguration {
  experiment: unknown;
  version: unknown;
  init: unknown;
  hyper: Record<string, unknown>;
}

/** From a run's manifest.json (hyperparameters are `{ value, source }` there). */
export function configurationOf(manifest: Record<string, unknown>): RunConfiguration {
  const recorded = (manifest.hyperparameters ?? {}) as Record<string, { value?: unknown } | undefined>;
  return {
    experiment: manifest.experiment_name,
    version: manifest.experiment_version,
    init: manifest.init ?? null,
    hyper: Object.fromEntries(Object.entries(recorded).map(([k, h]) => [k, h?.value])),
  };
}

const show = (v: unknown) => v === undefined ? "unset" : v === null ? "none" : JSON.stringify(v);

/**
 * How `b` differs from `a`, one entry per field, e.g. "epochs 15, not 2" (b's value first); empty when they
 * are one configuration. A hyperparameter one of them lacks (a flag given to one run only, such as
 * --train-limit) is a difference, whichever side lacks it.
 */
export function configurationDifferences(
  a: RunConfiguration,
  b: RunConfiguration,
  free: ReadonlySet<string> = new Set(),
): string[] {
  const differs = (x: unknown, y: unknown) => JSON.stringify(x) !== JSON.stringify(y);
  const out: string[] = [];
  if (differs(a.experiment, b.experiment)) {
    out.push(`experiment ${show(b.experiment)}, not ${show(a.experiment)}`);
  }
  if (differs(a.version, b.version)) out.push(`version ${show(b.version)}, not ${show(a.version)}`);
  if (differs(a.init, b.init)) out.push(`init ${show(b.init)}, not ${show(a.init)}`);
  const keys = [...new Set([...Object.keys(a.hyper), ...Object.keys(b.hyper)])].sort();
  for (const k of keys) {
    if (!free.has(k) && differs(a.hyper[k], b.hyper[k])) {
      out.push(`${k} ${show(b.hyper[k])}, not ${show(a.hyper[k])}`);
    }
  }
  return out;
}

/** The configuration a run request will record. */
export function requestConfiguration(req: RunRequest): RunConfiguration {
  return {
    experiment: req.experiment.name,
    version: req.experiment.version,
    init: req.init ?? null,
    hyper: { ...req.hyper } as Record<string, unknown>,
  };
}
