// webgpu-mda: the notebook's Deep MDA (and the paper's Deep LDA / softmax baselines) trained end to
// end in WGSL compute shaders through Deno's WebGPU. The public API, for scripts and notebooks.

export { describeAdapter, getGpu, getGpuOrExit, type Gpu, NoAdapterError } from "./lib/gpu/device.ts";
export { loadWgsl, pipeline } from "./lib/gpu/pipelines.ts";
export { f32, GpuTimer, grid1d, i32, Recorder } from "./lib/gpu/recorder.ts";
export { readF32, readI32, readU32, Tensor, upload, Workspace, write } from "./lib/gpu/tensor.ts";
export { type HostTensor, ParamStore, type ParamView } from "./lib/gpu/params.ts";
export { Rng } from "./lib/rng.ts";

export type { Layer } from "./lib/nn/layer.ts";
export { Conv2d } from "./lib/nn/conv2d/conv2d.ts";
export { BatchNorm2d } from "./lib/nn/batchnorm.ts";
export { ReLU } from "./lib/nn/relu.ts";
export { MaxPool2d } from "./lib/nn/maxpool.ts";
export { GlobalAvgPool } from "./lib/nn/avgpool.ts";
export { Linear } from "./lib/nn/linear.ts";
export { Adam } from "./lib/nn/adam.ts";
export { Encoder, type EncoderConfig, NOTEBOOK_WIDTHS } from "./lib/nn/encoder.ts";

export {
  confidenceHistogram,
  CrossEntropyLoss,
  DNLLLoss,
  EM_DNLLLoss,
  evaluateLogits,
  type Head,
  headSummary,
  headTrainStep,
  LDAHead,
  type Loss,
  MDAHead,
  reliability,
  SoftmaxHead,
  trueClassResponsibilities,
} from "./lib/mda/mod.ts";
export { Model, type ModelConfig } from "./lib/model.ts";

export { DataError, loadFashionMnist } from "./lib/data/fashion.ts";
export { DeviceSplit } from "./lib/data/device.ts";
export { loadSafetensors, saveSafetensors } from "./lib/io/safetensors.ts";
export { Trainer } from "./lib/train/trainer.ts";
export type * from "./lib/types.ts";
