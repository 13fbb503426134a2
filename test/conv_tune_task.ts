// A cheap tuning task for the tuner's tests (tuner_test.ts, fault_test.ts): the forward pass of a small conv
// layer, whose candidates are register-block tiles. "reference" and "other" are two correct tiles (any
// other name runs the reference's tile); "broken" clears its output, standing for a racy or miscompiled
// variant; "idle" records nothing, standing for one that leaves its output unwritten (the buffer still holds
// what the candidate before it wrote); `sabotage(name)` runs after each recording, for a candidate that
// breaks in some other way.

import { getGpu } from "../lib/gpu/device.ts";
import { ParamStore } from "../lib/gpu/params.ts";
import type { Recorder } from "../lib/gpu/recorder.ts";
import { type Tensor, upload } from "../lib/gpu/tensor.ts";
import type { TuneTask } from "../lib/gpu/tuner.ts";
import { Conv2d, type ConvTile } from "../lib/nn/conv2d/conv2d.ts";
import { Rng } from "../lib/rng.ts";
import { randn } from "./util.ts";

const TILES: Record<string, ConvTile> = {
  reference: { r4: 1, tp: 2, tq: 2, wg: 16 },
  other: { r4: 1, tp: 1, tq: 3, wg: 16 },
};

export async function convTuneTask(
  names: string[],
  sabotage: (name: string) => void = () => {},
): Promise<{ task: TuneTask; conv: Conv2d }> {
  const gpu = await getGpu();
  const rng = new Rng(9);
  const store = new ParamStore(gpu);
  const conv = new Conv2d(store, "c", 3, 5, rng);
  store.finalize();
  const x = upload(gpu, randn(rng, 2 * 3 * 5 * 6), [2, 3, 5, 6]);
  let y: Tensor | undefined;
  const task: TuneTask = {
    key: "test conv forward n=2 ci=3 co=5 h=5 w=6",
    candidates: names,
    record(name: string, rec: Recorder) {
      if (name === "idle") return; // must be dropped, though y holds the reference's output from before
      const tile = TILES[name] ?? TILES.reference;
      conv.setKernels({ ...conv.kernels, forward: { family: "register_block", tile } });
      y = conv.forward(rec, x, true);
      if (name === "broken") rec.clear(y); // wrong output: must be dropped
      sabotage(name);
    },
    outputs: () => [y!],
  };
  return { task, conv };
}
