// Float64 reference of a batch as torchvision builds it: RandomCrop(padding, zero fill) on the uint8
// image, then ToTensor (/255), then Normalize((x - mean) / std). Written from the definitions, one pixel
// at a time, independently of the GPU kernel's packing and lookup table.

export interface ReferenceBatch {
  /** [size, 1, rows, cols] */
  x: Float64Array;
  labels: number[];
}

export function referenceBatch(
  images: Uint8Array,
  labels: Uint8Array,
  rows: number,
  cols: number,
  order: Uint32Array,
  start: number,
  size: number,
  opts: { crop?: Uint8Array; padding?: number; normalize?: { mean: number; std: number } } = {},
): ReferenceBatch {
  const pad = opts.padding ?? 4;
  const x = new Float64Array(size * rows * cols);
  const out: number[] = [];
  for (let b = 0; b < size; b++) {
    const position = start + b;
    const image = order[position];
    out.push(labels[image]);
    // Without a crop the window sits at the padding offset, i.e. on the original image.
    const top = opts.crop ? opts.crop[2 * position] : pad;
    const left = opts.crop ? opts.crop[2 * position + 1] : pad;
    for (let y = 0; y < rows; y++) {
      for (let c = 0; c < cols; c++) {
        // Coordinates in the padded (rows + 2 pad) x (cols + 2 pad) image, then in the original.
        const sy = y + top - pad, sx = c + left - pad;
        const inside = sy >= 0 && sy < rows && sx >= 0 && sx < cols;
        const byte = inside ? images[image * rows * cols + sy * cols + sx] : 0;
        let v = byte / 255;
        if (opts.normalize) v = (v - opts.normalize.mean) / opts.normalize.std;
        x[(b * rows + y) * cols + c] = v;
      }
    }
  }
  return { x, labels: out };
}
