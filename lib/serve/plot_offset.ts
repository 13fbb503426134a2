// deno-lint-ignore-file no-explicit-any
// Imported first by the page script, before Observable Plot loads. Plot fixes a half-pixel offset of its
// marks once, when its module is evaluated: 0 where `window` is undefined (Deno, which drew the saved SVG
// files) or devicePixelRatio > 1, else 0.5. A page on a ratio-1 screen would then draw every figure shifted
// by half a pixel, and its SVG would differ from the file. Plot reads window.devicePixelRatio (a
// [Replaceable] attribute); it is shadowed here until Plot has loaded, and restored by restoreDevicePixelRatio.

const w = (globalThis as any).window;
const shadowed = w !== undefined && !(w.devicePixelRatio > 1);
if (shadowed) w.devicePixelRatio = 2;

/** Puts the browser's own devicePixelRatio back (Plot has read it by now). */
export function restoreDevicePixelRatio(): void {
  if (shadowed) delete w.devicePixelRatio;
}
