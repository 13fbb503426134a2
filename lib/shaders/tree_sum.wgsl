// tree_sum: the workgroup-wide sum of one value per lane, in a fixed order, shared by the 'tree' reduction
// kernels (lib/gpu/reduction.ts). Not a module of its own: the launcher appends it to a module that
// declares `const WG: u32` (a power of two, the workgroup size) and `alias TreeValue = ...` (f32, vec2<f32>,
// vec4<f32>: what each lane adds), with withTreeSum() in lib/gpu/reduction.ts.
//
// Lane t adds lane t + s for s = WG/2, WG/4, ..., 1: the shape of the tree depends only on WG, so the
// order of every addition is fixed (same inputs, same bits).

var<workgroup> tree: array<TreeValue, WG>;

// Every lane of the workgroup must call it (it holds barriers); the result is valid in every lane.
fn tree_sum(t: u32, v: TreeValue) -> TreeValue {
  tree[t] = v;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s = s / 2u) {
    if (t < s) {
      tree[t] = tree[t] + tree[t + s];
    }
    workgroupBarrier();
  }
  // Read, then a barrier before returning: a kernel may call tree_sum again (or reuse `tree`), and no lane
  // may store its next value into tree[0] while a slower one is still reading this sum.
  let total = tree[0];
  workgroupBarrier();
  return total;
}
