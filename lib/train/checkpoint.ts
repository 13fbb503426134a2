// Checkpoints of a run folder:
// - model.safetensors: the PyTorch state_dict (loads into the notebook's model with load_state_dict);
// - resume.safetensors: the same tensors plus Adam's moments, with everything else that --resume needs
//   (epoch, step within the epoch, Adam's step count, the data streams at the epoch's start, the
//   per-step stats so far, the history) as JSON in the safetensors metadata, so that one atomic rename
//   makes one consistent state.

import type { HostTensor, ParamSnapshot } from "../gpu/params.ts";
import {
  CheckpointError,
  encodeSafetensors,
  loadSafetensors,
  loadSafetensorsMetadata,
  saveSafetensors,
} from "../io/safetensors.ts";
import type { Model } from "../model.ts";
import type { BatchNormChoices } from "../nn/batchnorm_tune.ts";
import type { ConvChoices } from "../nn/conv2d/tune.ts";
import type { HistoryRow } from "../types.ts";
import type { DataStreamState } from "./trainer.ts";

export const RESUME_FORMAT = "webgpu-mda-resume/1";

export interface ResumeState {
  format: typeof RESUME_FORMAT;
  /** Epochs fully completed (history has this many rows). */
  epochsDone: number;
  /** Steps done in epoch epochsDone + 1 (0 at an epoch boundary). */
  stepInEpoch: number;
  adamStep: number;
  /** Data streams at the start of epoch epochsDone + 1. */
  streams: DataStreamState;
  /** [loss, correct] per step done in the unfinished epoch. */
  stats: number[];
  history: HistoryRow[];
  /** Training wall time so far, seconds. */
  elapsed: number;
  /**
   * Of `elapsed`, the seconds already spent in the unfinished epoch (stopped mid-epoch), which its history
   * row counts once it ends; absent at an epoch boundary and in checkpoints from before it was kept.
   */
  epochSeconds?: number;
  /** The conv kernels the run uses (lib/nn/conv2d/tune.ts); a resume reuses them, so bits match. */
  convKernels?: ConvChoices;
  /** The BatchNorm kernels (lib/nn/batchnorm_tune.ts), reused by a resume for the same reason. */
  batchNormKernels?: BatchNormChoices;
}

export async function saveModel(
  path: string,
  model: Model,
  metadata: Record<string, string> = {},
): Promise<void> {
  await saveSafetensors(path, await model.store.toHost(), metadata);
}

export async function saveResume(path: string, model: Model, state: ResumeState): Promise<void> {
  await writeResume(path, await model.store.toHostWithMoments(), state);
}

/**
 * An epoch's two checkpoints from one snapshot of the model (ParamStore.snapshot, read back with the epoch's
 * stats: every readback waits at least ~10 ms in Deno, and a readback per buffer cost 0.4 s an epoch):
 * resume.safetensors first, the source of truth for --resume, then model.safetensors, the same tensors
 * without Adam's moments.
 */
export async function writeCheckpoints(
  paths: { resume: string; model: string },
  snapshot: ParamSnapshot,
  state: ResumeState,
  metadata: Record<string, string> = {},
): Promise<void> {
  await writeResume(paths.resume, snapshot, state);
  await saveSafetensors(paths.model, snapshot.tensors, metadata);
}

async function writeResume(path: string, snapshot: ParamSnapshot, state: ResumeState): Promise<void> {
  const c = resumeContents(snapshot, state);
  await saveSafetensors(path, c.tensors, c.metadata);
}

/** A resume checkpoint's bytes (a browser keeps them in its storage: web/train.ts). */
export function encodeResume(snapshot: ParamSnapshot, state: ResumeState): Uint8Array {
  const c = resumeContents(snapshot, state);
  return encodeSafetensors(c.tensors, c.metadata);
}

function resumeContents(
  { tensors, m, v }: ParamSnapshot,
  state: ResumeState,
): { tensors: HostTensor[]; metadata: Record<string, string> } {
  const moments: HostTensor[] = [
    { name: "optimizer.exp_avg", dtype: "F32", shape: [m.length], data: m },
    { name: "optimizer.exp_avg_sq", dtype: "F32", shape: [v.length], data: v },
  ];
  return {
    tensors: [...tensors, ...moments],
    metadata: { format: RESUME_FORMAT, state: JSON.stringify(state) },
  };
}

export async function loadResume(path: string, model: Model): Promise<ResumeState> {
  return restoreResume(await loadSafetensors(path), model, path);
}

/**
 * The run state in a resume checkpoint's metadata, with the fields a resume cannot do without checked: a
 * checkpoint written by another tool or edited by hand fails here, naming the file and the field, rather
 * than deep inside the trainer.
 */
function resumeState(metadata: Record<string, string>, source: string): ResumeState {
  if (metadata.format !== RESUME_FORMAT || !metadata.state) {
    throw new Error(`${source}: not a resume checkpoint of this tool (metadata format "${metadata.format}")`);
  }
  let state: Record<string, unknown>;
  try {
    state = JSON.parse(metadata.state);
  } catch (e) {
    throw new CheckpointError(`${source}: its resume state is not valid JSON (${(e as Error).message})`);
  }
  const fail = (field: string, expected: string) => {
    const got = state?.[field] === undefined ? "missing" : JSON.stringify(state[field])?.slice(0, 60);
    throw new CheckpointError(`${source}: resume state field ${field} is ${got}, expected ${expected}`);
  };
  if (state === null || typeof state !== "object" || Array.isArray(state)) {
    throw new CheckpointError(`${source}: its resume state is not a JSON object`);
  }
  for (const field of ["epochsDone", "stepInEpoch", "adamStep"]) {
    const v = state[field];
    if (!(Number.isInteger(v) && (v as number) >= 0)) fail(field, "an integer >= 0");
  }
  if (!(typeof state.elapsed === "number" && state.elapsed >= 0)) fail("elapsed", "a number >= 0");
  for (const field of ["stats", "history"]) if (!Array.isArray(state[field])) fail(field, "a list");
  if ((state.history as unknown[]).length !== state.epochsDone) {
    fail("history", `a list of epochsDone = ${state.epochsDone} rows`);
  }
  if (state.streams === null || typeof state.streams !== "object") fail("streams", "an object");
  return state as unknown as ResumeState;
}

/** How far a resume checkpoint's run went (epochs done, steps into the next), read without a model. */
export async function resumeProgress(path: string): Promise<{ epochsDone: number; stepInEpoch: number }> {
  // The header only: the whole checkpoint (13 MB for the notebook model) is read once, to resume.
  const { epochsDone, stepInEpoch } = resumeState(await loadSafetensorsMetadata(path), path);
  return { epochsDone, stepInEpoch };
}

/**
 * Loads a decoded resume checkpoint into `model` (parameters, BatchNorm statistics, Adam's moments and
 * step) and returns its state; `source` names it in errors.
 */
export function restoreResume(
  { tensors, metadata }: { tensors: HostTensor[]; metadata: Record<string, string> },
  model: Model,
  source: string,
): ResumeState {
  const state = resumeState(metadata, source);
  const store = model.store;
  const moments = new Map<string, HostTensor>();
  const rest: HostTensor[] = [];
  for (const t of tensors) {
    if (t.name.startsWith("optimizer.")) moments.set(t.name, t);
    else rest.push(t);
  }
  // Everything is checked before anything is written to the GPU.
  const adam = (["optimizer.exp_avg", "optimizer.exp_avg_sq"] as const).map((name) => {
    const t = moments.get(name);
    if (!t || t.dtype !== "F32" || t.shape.length !== 1 || t.shape[0] !== store.flatLength) {
      throw new Error(
        `${source}: ${name} missing or of the wrong size or type (expected F32 [${store.flatLength}])`,
      );
    }
    return t.data as Float32Array<ArrayBuffer>;
  });
  store.fromHost(rest, source);
  model.gpu.device.queue.writeBuffer(store.m!, 0, adam[0]);
  model.gpu.device.queue.writeBuffer(store.v!, 0, adam[1]);
  model.adam.step = state.adamStep;
  return state;
}
