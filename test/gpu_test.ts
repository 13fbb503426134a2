import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { getGpu } from "../lib/gpu/device.ts";
import { loadWgsl, pipeline, pipelineBuildStats } from "../lib/gpu/pipelines.ts";
import { ARENA_SLOTS, f32, GpuStopwatch, GpuTimer, grid1d, Recorder } from "../lib/gpu/recorder.ts";
import { readF32, readRegions, Tensor, upload } from "../lib/gpu/tensor.ts";
import { Rng } from "../lib/rng.ts";

Deno.test("gpu: adapter report names the adapter", async () => {
  const gpu = await getGpu();
  if (!gpu.report.description) throw new Error("empty description");
});

Deno.test("gpu: uniform arena and binding convention, many dispatches in one submit", async () => {
  const gpu = await getGpu();
  const code = loadWgsl(import.meta.url, "../lib/shaders/smoke.wgsl");
  const p = pipeline(gpu, { code, entryPoint: "main" });
  const n = 1000;
  const x = upload(gpu, Float32Array.from({ length: n }, (_, i) => i));
  const ys = [1, 2, 3].map(() => upload(gpu, new Float32Array(n)));
  const rec = new Recorder(gpu);
  ys.forEach((y, k) => rec.dispatch(p, [n, f32(k + 0.5), f32(-k)], [x, y], grid1d(n, 64)));
  await rec.finish();
  for (let k = 0; k < 3; k++) {
    const y = await readF32(gpu, ys[k]);
    assertEquals(y[7], 7 * (k + 0.5) - k);
    assertEquals(y[n - 1], (n - 1) * (k + 0.5) - k);
  }
});

Deno.test("gpu: a step recorded again reuses its bind groups; other buffers or offsets get their own", async () => {
  const gpu = await getGpu();
  const p = pipeline(gpu, {
    code: loadWgsl(import.meta.url, "../lib/shaders/smoke.wgsl"),
    entryPoint: "main",
  });
  const n = 128; // the second half starts 512 bytes in: a storage binding offset must be 256-aligned
  const x = upload(gpu, Float32Array.from({ length: n }, (_, i) => i));
  const y = upload(gpu, new Float32Array(2 * n), [2 * n]);
  const rec = new Recorder(gpu);
  // One "step": two dispatches writing the two halves of y (same buffer, other offsets).
  const step = (a: number, out = y) => {
    rec.dispatch(p, [n, f32(a), f32(0)], [x, new Tensor(out.buffer, [n], 0)], grid1d(n, 64));
    rec.dispatch(p, [n, f32(-a), f32(1)], [x, new Tensor(out.buffer, [n], 4 * n)], grid1d(n, 64));
    rec.submit();
  };
  step(1);
  step(2); // same buffers and uniform slots: both groups from the cache, new parameters all the same
  assertEquals([rec.dispatches, rec.bindGroupsCreated], [4, 2]);
  await rec.finish();
  let got = await readF32(gpu, y);
  assertEquals([got[3], got[n + 3]], [6, -5]);
  // A buffer made in place of a destroyed one is another buffer: new groups, and the new buffer written.
  y.buffer.destroy();
  const y2 = upload(gpu, new Float32Array(2 * n), [2 * n]);
  step(3, y2);
  assertEquals(rec.bindGroupsCreated, 4);
  await rec.finish();
  got = await readF32(gpu, y2);
  assertEquals([got[3], got[n + 3]], [9, -8]);
  rec.destroy();
});

Deno.test("gpu: untimed sections share one compute pass; a copy or a timer starts new ones; results in order", async () => {
  const gpu = await getGpu();
  const p = pipeline(gpu, {
    code: loadWgsl(import.meta.url, "../lib/shaders/smoke.wgsl"),
    entryPoint: "main",
  });
  const n = 256;
  const x = upload(gpu, Float32Array.from({ length: n }, (_, i) => i));
  const a = upload(gpu, new Float32Array(n)), b = upload(gpu, new Float32Array(n));
  const rec = new Recorder(gpu);
  // b = 2 (3x + 1) + 0.5, written in a later section than a = 3x + 1 that it reads.
  rec.timed("first", () => rec.dispatch(p, [n, f32(3), f32(1)], [x, a], grid1d(n, 64)));
  rec.timed("second", () => rec.dispatch(p, [n, f32(2), f32(0.5)], [a, b], grid1d(n, 64)));
  assertEquals(rec.passes, 1);
  rec.copy(b, a); // a copy ends the pass; the next dispatch begins another
  rec.dispatch(p, [n, f32(1), f32(1)], [a, b], grid1d(n, 64));
  assertEquals(rec.passes, 2);
  await rec.finish();
  assertEquals((await readF32(gpu, b))[5], 2 * 16 + 0.5 + 1);
  // With a timer attached every section is its own pass, timed.
  if (GpuTimer.available(gpu)) {
    const timer = new GpuTimer(gpu, 2);
    rec.attachTimer(timer);
    rec.timed("first", () => rec.dispatch(p, [n, f32(3), f32(1)], [x, a], grid1d(n, 64)));
    rec.timed("second", () => rec.dispatch(p, [n, f32(2), f32(0.5)], [a, b], grid1d(n, 64)));
    assertEquals(rec.passes, 4);
    await rec.finish();
    const t = await timer.read();
    assertEquals([...t.keys()].sort(), ["first", "second"]);
    // Sections over several submits, one each: every submit's resolve is valid (WebGPU takes offsets that
    // are multiples of 256 bytes only), and each section keeps its own time.
    const many = new GpuTimer(gpu, 3);
    const rec2 = new Recorder(gpu);
    rec2.attachTimer(many);
    for (const label of ["one", "two", "three"]) {
      gpu.device.pushErrorScope("validation");
      rec2.timed(label, () => rec2.dispatch(p, [n, f32(3), f32(1)], [x, a], grid1d(n, 64)));
      rec2.submit();
      const error = await gpu.device.popErrorScope();
      assertEquals(error?.message, undefined, `the submit after section ${label}`);
    }
    const times = await many.read();
    assertEquals([...times.keys()], ["one", "two", "three"]);
    for (const ms of times.values()) assert(ms >= 0, `${ms}`);
    rec2.destroy();
    many.destroy();
    // A section of more dispatches than the uniform arena holds: the flush in its middle goes on timing the
    // rest under the same label, so the whole section is timed (two timed passes, one label).
    const whole = new GpuTimer(gpu, 4);
    const rec3 = new Recorder(gpu);
    rec3.attachTimer(whole);
    rec3.timed("long", () => {
      for (let i = 0; i < ARENA_SLOTS + 3; i++) rec3.dispatch(p, [n, f32(1), f32(0)], [x, a], grid1d(n, 64));
    });
    await rec3.finish();
    assertEquals(whole.region().bytes, 2 * 16, "two timed passes");
    const long = await whole.read();
    assertEquals([...long.keys()], ["long"]);
    assert(long.get("long")! >= 0, `${long.get("long")}`);
    rec3.destroy();
    whole.destroy();
    timer.destroy();
  }
  rec.destroy();
});

Deno.test("gpu: the stopwatch times the work between its marks, after the work queued before them", async () => {
  const gpu = await getGpu();
  if (!GpuStopwatch.available(gpu)) return; // the trainer then records no evaluation time
  // Busy work: each invocation runs a long dependent chain, about a tenth of a second on llvmpipe.
  const busy = pipeline(gpu, {
    code: `@group(0) @binding(0) var<storage, read_write> v: array<f32>;
@compute @workgroup_size(64) fn busy(@builtin(global_invocation_id) g: vec3u) {
  var x = v[g.x];
  for (var i = 0u; i < 4000u; i++) { x = x * 0.999 + 0.5; }
  v[g.x] = x;
}`,
    entryPoint: "busy",
    label: "the stopwatch test's busy work",
  });
  const v = upload(gpu, new Float32Array(64 * 256));
  const clock = new GpuStopwatch(gpu);
  const span = async (before: number, between: number) => {
    const rec = new Recorder(gpu);
    for (let i = 0; i < before; i++) rec.dispatch(busy, undefined, [v], [256, 1, 1]);
    rec.submit();
    clock.start(rec);
    for (let i = 0; i < between; i++) rec.dispatch(busy, undefined, [v], [256, 1, 1]);
    clock.stop(rec);
    rec.submit();
    const [bytes] = await readRegions(gpu, [clock.region()]);
    rec.destroy();
    return clock.seconds(bytes)!;
  };
  await span(0, 1); // builds the pipeline
  const work = await span(0, 4), nothing = await span(0, 0), after = await span(4, 0);
  assertEquals(work > 0 && nothing >= 0 && after >= 0, true, `spans ${work}, ${nothing}, ${after} s`);
  // The marks wait for the work before them (a mark written at once would put the earlier work's tail
  // inside the span that follows it).
  assertEquals(
    work > nothing && work > after,
    true,
    `work ${work} s, nothing ${nothing} s, after ${after} s`,
  );
  clock.destroy();
});

Deno.test("gpu: pipeline builds are counted and timed once each; the slowest is named", async () => {
  const gpu = await getGpu();
  const before = pipelineBuildStats(gpu);
  // A source no other test builds (a fresh string per run of this test), built twice: one build.
  const code = `@group(0) @binding(0) var<storage, read_write> v: array<f32>;
@compute @workgroup_size(1) fn built_${before.count}() { v[0] = ${before.count}.0; }`;
  const spec = { code, entryPoint: `built_${before.count}`, label: "the build-stats test's kernel" };
  const p = pipeline(gpu, spec);
  assertEquals(pipeline(gpu, spec) === p, true, "the second call is the cached pipeline");
  const after = pipelineBuildStats(gpu);
  assertEquals(after.count, before.count + 1);
  assertEquals(after.totalMs >= before.totalMs && after.slowestMs >= before.slowestMs, true);
  const ownMs = after.totalMs - before.totalMs;
  assertEquals(after.slowest, ownMs > before.slowestMs ? spec.label : before.slowest);
});

Deno.test("rng: same seed same stream, known first values, unbiased-looking", () => {
  const a = new Rng(42), b = new Rng(42), c = new Rng(43);
  const sa = Array.from({ length: 5 }, () => a.u32());
  assertEquals(sa, Array.from({ length: 5 }, () => b.u32()));
  if (sa.join() === Array.from({ length: 5 }, () => c.u32()).join()) {
    throw new Error("seeds 42 and 43 collide");
  }
  const r = new Rng(1);
  let mean = 0;
  for (let i = 0; i < 10000; i++) mean += r.normal() / 10000;
  if (Math.abs(mean) > 0.05) throw new Error(`normal mean ${mean}`);
  const st = r.getState();
  const x = r.u32();
  r.setState(st);
  assertEquals(r.u32(), x);
});
