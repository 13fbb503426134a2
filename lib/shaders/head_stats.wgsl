// head_stats: the batch's stats from the heads' per-sample rows, shared by the reduce kernels of the MDA,
// LDA and softmax heads (serial and tree variants). Not a module of its own: lib/mda/head.ts
// (headModule) appends it to a head's module, which declares
//   `sample`  the per-sample rows [N, 4]: loss, 1 if correct, a head's own value, 1 if the label is out
//             of range;
//   `stats`   the step's stats (STATS_PER_STEP in lib/mda/head.ts), and `p` with fields `n` and `slot`.

// What sample n adds to the batch's sums: (loss, correct, out-of-range label, 0).
fn sample_stats(n: u32) -> vec4<f32> {
  return vec4<f32>(sample[n * 4u], sample[n * 4u + 1u], sample[n * 4u + 3u], 0.0);
}

// The batch's mean loss to stats[3*slot], its correct predictions and out-of-range labels after it.
fn store_batch_stats(sum: vec4<f32>) {
  stats[3u * p.slot] = sum.x / f32(p.n);
  stats[3u * p.slot + 1u] = sum.y;
  stats[3u * p.slot + 2u] = sum.z;
}
