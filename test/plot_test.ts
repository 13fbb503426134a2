// Figures: every output is one well-formed standalone SVG document (checked by a strict XML reader below,
// since linkedom's parser forgives anything) with the expected marks, and PCA against hand-computed axes.

import { deepStrictEqual as assertEquals, ok as assert, throws as assertThrows } from "node:assert/strict";
import { DOMParser } from "linkedom";
import {
  accuracyFigure,
  componentExamplesFigure,
  confidenceHistogramFigure,
  fitPca,
  formatEce,
  latentFigure,
  lossFigure,
  projectPca,
  reliabilityFigure,
  runsCurveFigure,
  sideBySide,
  sweepFigure,
  symmetricEigen,
  TAB10,
} from "../lib/plot/mod.ts";
import { Rng } from "../lib/rng.ts";
import type { HistoryRow, LatentSnapshot, Reliability } from "../lib/types.ts";
import { assertClose } from "./util.ts";

// ---------------------------------------------------------------------------------------------------------
// A strict well-formedness check: one root element, balanced tags, quoted attributes without duplicates,
// only the predefined or numeric entities, nothing but whitespace around the root.

const NAME = /^[A-Za-z_:][\w:.-]*/;
const ENTITY = /&(?:amp|lt|gt|quot|apos|#\d+|#x[0-9a-fA-F]+);/y;

function checkEntities(text: string, where: string): void {
  for (let i = text.indexOf("&"); i >= 0; i = text.indexOf("&", i + 1)) {
    ENTITY.lastIndex = i;
    if (!ENTITY.test(text)) throw new Error(`bad entity in ${where}: "${text.slice(i, i + 12)}"`);
  }
}

function assertWellFormedSvg(xml: string): void {
  let i = 0;
  const prolog = /^<\?xml[^?]*\?>/.exec(xml);
  if (prolog) i = prolog[0].length;
  const stack: string[] = [];
  let roots = 0;
  let rootName = "", rootTag = "";
  while (i < xml.length) {
    const lt = xml.indexOf("<", i);
    const text = xml.slice(i, lt < 0 ? xml.length : lt);
    if (stack.length === 0 && text.trim()) {
      throw new Error(`text outside the root: "${text.trim().slice(0, 30)}"`);
    }
    checkEntities(text, "text");
    if (lt < 0) break;
    if (xml.startsWith("<!--", lt)) {
      const end = xml.indexOf("-->", lt);
      if (end < 0) throw new Error("unterminated comment");
      i = end + 3;
      continue;
    }
    if (xml.startsWith("</", lt)) {
      const name = NAME.exec(xml.slice(lt + 2))?.[0];
      const close = xml.indexOf(">", lt);
      if (!name || close < 0 || xml.slice(lt + 2 + name.length, close).trim()) {
        throw new Error(`bad end tag at ${lt}`);
      }
      const open = stack.pop();
      if (open !== name) throw new Error(`</${name}> closes <${open}> at ${lt}`);
      i = close + 1;
      continue;
    }
    const name = NAME.exec(xml.slice(lt + 1))?.[0];
    if (!name) throw new Error(`bad tag at ${lt}: "${xml.slice(lt, lt + 20)}"`);
    let j = lt + 1 + name.length;
    const seen = new Set<string>();
    for (;;) {
      const ws = /^\s*/.exec(xml.slice(j))![0].length;
      j += ws;
      if (xml.startsWith("/>", j) || xml[j] === ">") break;
      if (ws === 0) throw new Error(`<${name}>: missing space before an attribute at ${j}`);
      const attr = /^([A-Za-z_:][\w:.-]*)\s*=\s*("([^"<]*)"|'([^'<]*)')/.exec(xml.slice(j));
      if (!attr) throw new Error(`<${name}>: bad attribute at ${j}: "${xml.slice(j, j + 30)}"`);
      if (seen.has(attr[1])) throw new Error(`<${name}>: duplicate attribute ${attr[1]}`);
      seen.add(attr[1]);
      checkEntities(attr[3] ?? attr[4], `attribute ${attr[1]}`);
      j += attr[0].length;
    }
    const selfClosing = xml.startsWith("/>", j);
    if (stack.length === 0) {
      roots++;
      rootName = name;
      rootTag = xml.slice(lt, j);
    }
    if (!selfClosing) stack.push(name);
    i = j + (selfClosing ? 2 : 1);
  }
  if (stack.length) throw new Error(`unclosed <${stack[stack.length - 1]}>`);
  assertEquals(roots, 1, "exactly one root element");
  assertEquals(rootName, "svg");
  assert(rootTag.includes('xmlns="http://www.w3.org/2000/svg"'), "root carries the SVG namespace");
  assert(/\swidth="\d+"/.test(rootTag) && /\sheight="\d+"/.test(rootTag), "root has a pixel size");
}

// deno-lint-ignore no-explicit-any
type Doc = any;

function parse(svg: string): Doc {
  assertWellFormedSvg(svg);
  return new DOMParser().parseFromString(svg, "image/svg+xml");
}

function marks(doc: Doc, description: string, element: string): Doc[] {
  return Array.from(doc.querySelectorAll(`g[aria-description="${description}"] ${element}`));
}

function texts(doc: Doc, selector: string): string[] {
  return Array.from(doc.querySelectorAll(selector)).map((t: Doc) => t.textContent as string);
}

/** Asserts the figure is titled and has a white background, the minimum of every figure. */
function assertFrame(doc: Doc, title: string): void {
  assertEquals(texts(doc, 'text[aria-label="title"]'), [title]);
  const bg = doc.querySelector('rect[aria-label="background"]');
  assertEquals(bg.getAttribute("fill"), "white");
}

// ---------------------------------------------------------------------------------------------------------

function history(epochs: number): HistoryRow[] {
  return Array.from({ length: epochs }, (_, i) => ({
    epoch: i + 1,
    train_loss: 0.4 - 0.1 * i,
    train_accuracy: 0.8 + 0.02 * i,
    test_accuracy: 0.78 + (i === 1 ? 0.05 : 0.015 * i),
    test_nll: 0.5,
    test_ece: 0.03,
    seconds: 100,
  }));
}

Deno.test("plot: several runs' curves, one line per run; runs that tie get a readable y axis", () => {
  const doc = parse(runsCurveFigure(
    [
      { label: "seed 1", history: history(3) },
      { label: "seed 2", history: history(2) },
    ],
    "test_accuracy",
    "Seeds",
  ));
  assertFrame(doc, "Seeds");
  assertEquals(texts(doc, 'g[aria-label="legend"] text'), ["seed 1", "seed 2"]);
  assertEquals(marks(doc, "seed 1", "path").length, 1);
  assertEquals(marks(doc, "seed 2", "path").length, 1);
  // One epoch at one value: a padded domain with several round ticks, not one tick at the value.
  const flat = (label: string) => ({
    label,
    history: history(1).map((h) => ({ ...h, test_accuracy: 1 / 12 })),
  });
  const tied = parse(runsCurveFigure([flat("a"), flat("b")], "test_accuracy"));
  const ticks = texts(tied, 'g[aria-label="y-axis tick label"] text');
  assert(ticks.length > 2 && ticks.every((t) => t.length <= 5), ticks.join(" "));
});

Deno.test("plot: several runs' curves in groups, a colour and a legend entry per group, a line per run", () => {
  const runs = [1, 2, 3].flatMap((seed) =>
    ["LDA", "softmax"].map((head) => ({ label: `${head}, seed ${seed}`, group: head, history: history(3) }))
  );
  const doc = parse(runsCurveFigure(runs, "test_ece", "Heads over seeds"));
  assertFrame(doc, "Heads over seeds");
  assertEquals(texts(doc, 'g[aria-label="legend"] text'), ["LDA", "softmax"]);
  const stroke = (label: string) => {
    const g = doc.querySelector(`g[aria-description="${label}"]`);
    return g.getAttribute("stroke") ?? marks(doc, label, "path")[0].getAttribute("stroke");
  };
  for (const seed of [1, 2, 3]) {
    assertEquals(marks(doc, `LDA, seed ${seed}`, "path").length, 1);
    assertEquals(stroke(`LDA, seed ${seed}`), stroke("LDA, seed 1"));
    assertEquals(stroke(`softmax, seed ${seed}`), stroke("softmax, seed 1"));
  }
  assert(stroke("LDA, seed 1")?.startsWith("#") && stroke("LDA, seed 1") !== stroke("softmax, seed 1"));
  // ECE is drawn ×100, as the tables give it: every run's 0.03 sits at 3.
  const yTicks = texts(doc, 'g[aria-label="y-axis tick label"] text').map(Number);
  assert(Math.min(...yTicks) <= 3 && Math.max(...yTicks) >= 3 && Math.max(...yTicks) < 10, yTicks.join(" "));
  // Without groups, every run its own colour and entry (the runs above have six).
  const ungrouped = parse(runsCurveFigure(runs.map(({ group: _, ...r }) => r), "test_ece"));
  assertEquals(texts(ungrouped, 'g[aria-label="legend"] text').length, 6);
});

Deno.test("plot: accuracy and loss figures draw one line per series, markers for short runs", () => {
  const doc = parse(accuracyFigure(history(3), "MDA accuracy"));
  assertFrame(doc, "MDA accuracy");
  assertEquals(marks(doc, "train accuracy", "path").length, 1);
  assertEquals(marks(doc, "test accuracy", "path").length, 1);
  assertEquals(marks(doc, "train accuracy marker", "circle").length, 3);
  assertEquals(marks(doc, "test accuracy marker", "circle").length, 3);
  const legend = texts(doc, 'g[aria-label="legend"] text');
  assertEquals(legend, ["Train accuracy", "Test accuracy"]);
  // The best epoch is 2 (0.83), the final one 3 (0.81).
  assert(texts(doc, 'text[aria-label="subtitle"]')[0].includes("best 0.8300 (epoch 2)"));
  assert(texts(doc, "text").includes("Epoch") && texts(doc, "text").includes("Accuracy"));

  const long = parse(accuracyFigure(history(60)));
  assertEquals(marks(long, "train accuracy marker", "circle").length, 0, "no markers on 60 epochs");

  const loss = parse(lossFigure(history(4)));
  assertFrame(loss, "Train loss per epoch");
  assertEquals(marks(loss, "train loss", "path").length, 1);

  // One epoch: a padded y axis with round ticks, not one tick at the single value.
  for (
    const one of [
      lossFigure(history(1)),
      accuracyFigure(history(1).map((h) => ({ ...h, train_accuracy: 0.5, test_accuracy: 0.5 }))),
    ]
  ) {
    const ticks = texts(parse(one), 'g[aria-label="y-axis tick label"] text');
    assert(ticks.length > 2 && ticks.every((t) => t.length <= 5), ticks.join(" "));
  }

  // A run that has not finished an epoch still gets a valid, labelled figure.
  const empty = parse(accuracyFigure([]));
  assert(texts(empty, "text").includes("No completed epoch yet"));
  parse(lossFigure([]));
});

/** A 2-D mixture: C classes, K components, `n` points; component (c, k) centred at mean[c, k]. */
function snapshot(rng: Rng, dim: number, C: number, K: number, n: number): LatentSnapshot {
  const means: number[] = [];
  for (let i = 0; i < C * K * dim; i++) means.push(rng.range(-5, 5));
  const z: number[] = [], labels: number[] = [];
  for (let i = 0; i < n; i++) {
    const c = i % C, k = rng.int(K);
    labels.push(c);
    for (let d = 0; d < dim; d++) z.push(means[(c * K + k) * dim + d] + rng.normal() * 0.5);
  }
  const weights: number[] = [];
  for (let c = 0; c < C; c++) {
    for (let k = 0; k < K; k++) weights.push(K === 1 ? 1 : k === 0 ? 0.63 : 0.37);
  }
  return {
    dim,
    z,
    labels,
    means,
    weights,
    components: K,
    classNames: ["A & B", "C<D", "E", "F"].slice(0, C),
  };
}

/** The (cx, cy) of every circle or mark transform in a group, in drawing order. */
function positions(doc: Doc, description: string, element: string): [number, number][] {
  return marks(doc, description, element).map((el: Doc) => {
    if (element === "circle") return [Number(el.getAttribute("cx")), Number(el.getAttribute("cy"))];
    const m = /translate\(([-\d.]+),([-\d.]+)\)/.exec(el.getAttribute("transform"))!;
    return [Number(m[1]), Number(m[2])];
  });
}

/**
 * The embeddings as drawn: one group per class in label order, carrying the class colour, each point a bare
 * circle. Returns the points' (cx, cy) in drawing order and each group's fill, and checks the order: the
 * points of class c are those with label c, in data order, so `byClass` maps drawing order to data index.
 */
function embeddings(
  doc: Doc,
  labels: number[],
): { screen: [number, number][]; fills: string[]; byClass: number[] } {
  const groups: Doc[] = Array.from(doc.querySelectorAll('g[aria-description="embedding"]'));
  const screen: [number, number][] = [];
  const fills: string[] = [];
  const byClass: number[] = [];
  const classes = Math.max(...labels) + 1;
  assertEquals(groups.length, classes, "one group of embeddings per class");
  groups.forEach((g, c) => {
    fills.push(g.getAttribute("fill"));
    const circles: Doc[] = Array.from(g.querySelectorAll("circle"));
    for (const el of circles) {
      assertEquals(el.getAttribute("fill"), null, "a point's colour is its group's");
      screen.push([Number(el.getAttribute("cx")), Number(el.getAttribute("cy"))]);
    }
    labels.forEach((y, i) => y === c && byClass.push(i));
    assertEquals(screen.length, byClass.length, `class ${c}: one circle per point of the class`);
  });
  return { screen, fills, byClass };
}

/** Asserts screen = a + b * data per axis for all pairs (b > 0 on x, b < 0 on y), up to the 0.01 px rounding. */
function assertAffine(screen: [number, number][], data: [number, number][], what: string): void {
  for (const axis of [0, 1]) {
    let lo = 0, hi = 0;
    data.forEach((d, i) => {
      if (d[axis] < data[lo][axis]) lo = i;
      if (d[axis] > data[hi][axis]) hi = i;
    });
    const b = (screen[hi][axis] - screen[lo][axis]) / (data[hi][axis] - data[lo][axis]);
    assert(axis === 0 ? b > 0 : b < 0, `${what}: axis ${axis} orientation`);
    const a = screen[lo][axis] - b * data[lo][axis];
    assertClose(screen.map((s) => s[axis]), data.map((d) => a + b * d[axis]), {
      rtol: 0,
      atol: 0.011,
      what: `${what} axis ${axis}`,
    });
  }
}

Deno.test("plot: latent figure, 2-D: every point, every mean as an X, only weights >= 0.05 labelled", () => {
  const rng = new Rng(7);
  const s = snapshot(rng, 2, 3, 2, 500);
  // One component nearly empty but inside the data's range: drawn as an X, not labelled.
  s.weights = [0.63, 0.37, 0.96, 0.04, 0.5, 0.5];
  s.means![3 * 2] = s.z[0];
  s.means![3 * 2 + 1] = s.z[1];
  const doc = parse(latentFigure(s, "Latent"));
  assertFrame(doc, "Latent");
  // Every point, drawn class by class as the notebook's scatter loop does.
  const { screen: points, fills, byClass } = embeddings(doc, s.labels);
  assertEquals(points.length, 500);
  // Points are placed by one affine map per axis (y grows upwards), i.e. the data is where it should be.
  const data = byClass.map((i) => [s.z[2 * i], s.z[2 * i + 1]] as [number, number]);
  assertAffine(points, data, "embeddings");
  // Each class has its own colour, the legend's.
  assertEquals(fills, TAB10.slice(0, 3));
  const xs = positions(doc, "component mean", "path");
  assertEquals(xs.length, 6);
  assertEquals(marks(doc, "component mean", "path")[0].getAttribute("fill"), fills[0]);
  assertEquals(texts(doc, 'g[aria-description="component weight"] text'), [
    "0.63",
    "0.37",
    "0.96",
    "0.50",
    "0.50",
  ]);
  const legend = texts(doc, 'g[aria-label="legend"] text');
  assertEquals(legend.slice(0, 3), ["A & B", "C<D", "E"]);
  assert(texts(doc, "text").includes("z1") && texts(doc, "text").includes("z2"));
  assertEquals(doc.querySelector('text[aria-label="footnote"]'), null);

  // A nearly empty component far away does not stretch the view: it is left out and the footnote says so.
  s.means![3 * 2] = 1e4;
  const far = parse(latentFigure(s));
  assertEquals(positions(far, "component mean", "path").length, 5);
  assert(texts(far, 'text[aria-label="footnote"]')[0].startsWith("1 component mean"));
});

Deno.test("plot: latent figure, 3-D is projected with PCA (points and means alike), 1-D draws class rows", () => {
  const rng = new Rng(11);
  const s = snapshot(rng, 3, 4, 1, 400);
  const doc = parse(latentFigure(s));
  const labels = texts(doc, "text");
  assert(labels.some((t) => t.startsWith("PC1")) && labels.some((t) => t.startsWith("PC2")));
  // K = 1: weights are all 1, so no labels.
  assertEquals(texts(doc, 'g[aria-description="component weight"] text'), []);
  const pca = fitPca(s.z, 400, 3);
  const zp = projectPca(pca, s.z), mp = projectPca(pca, s.means!);
  const drawn = embeddings(doc, s.labels);
  const data = [
    ...drawn.byClass.map((i) => [zp[2 * i], zp[2 * i + 1]] as [number, number]),
    ...Array.from({ length: 4 }, (_, i) => [mp[2 * i], mp[2 * i + 1]] as [number, number]),
  ];
  const screen = [...drawn.screen, ...positions(doc, "component mean", "path")];
  assertAffine(screen, data, "projected points and means");

  const one = snapshot(new Rng(12), 1, 3, 2, 90);
  const doc1 = parse(latentFigure(one));
  const drawn1 = embeddings(doc1, one.labels);
  assertEquals(drawn1.screen.length, 90);
  assertEquals(positions(doc1, "component mean", "path").length, 6);
  // A point's row is its class: one y per class, a different one for each class.
  const rows = [0, 1, 2].map((c) =>
    new Set(drawn1.screen.filter((_, j) => one.labels[drawn1.byClass[j]] === c).map((p) => p[1]))
  );
  assertEquals(rows.map((r) => r.size), [1, 1, 1]);
  assertEquals(new Set(rows.map((r) => [...r][0])).size, 3);
});

Deno.test("plot: latent figure, 10 000 points stay small; bad input is named", () => {
  const s = snapshot(new Rng(5), 2, 4, 2, 10000);
  const svg = latentFigure(s);
  // About 42 bytes a point: a colour and opacity on every circle would make it 0.58 MB.
  assert(svg.length < 0.45e6, `latent figure is ${svg.length} bytes`);
  assertEquals(embeddings(parse(svg), s.labels).screen.length, 10000);
  assertThrows(
    () => latentFigure({ ...s, z: s.z.slice(1) }),
    /z has 19999 values, expected labels.length \* dim/,
  );
  assertThrows(() => latentFigure({ ...s, labels: [...s.labels.slice(1), 7] }), /labels\[9999\] = 7/);
  assertThrows(() => latentFigure({ ...s, weights: [1] }), /weights has 1 values/);
  // Same input, same bytes.
  assertEquals(latentFigure(s), svg);
});

Deno.test("plot: PCA of a known 3-D point set finds the hand-computed axes", () => {
  // Orthonormal u, v, w; the points m +- 3u, m +- v have covariance (9/2) u u' + (1/2) v v'.
  const u = [1 / 3, 2 / 3, 2 / 3], v = [2 / 3, 1 / 3, -2 / 3];
  const m = [1, -2, 0.5];
  const pts: number[] = [];
  for (const [a, b] of [[3, 0], [-3, 0], [0, 1], [0, -1]]) {
    for (let k = 0; k < 3; k++) pts.push(m[k] + a * u[k] + b * v[k]);
  }
  const pca = fitPca(pts, 4, 3);
  assertClose(pca.mean, m, { atol: 1e-12, what: "mean" });
  // Sign convention: the largest entry (the first of equals) is positive; u and v already satisfy it.
  assertClose(pca.components[0], u, { atol: 1e-12, what: "PC1" });
  assertClose(pca.components[1], v, { atol: 1e-12, what: "PC2" });
  assertClose(pca.variances, [4.5, 0.5], { atol: 1e-12, what: "variances" });
  assertClose([pca.totalVariance], [5], { atol: 1e-12, what: "total variance" });
  assertClose(projectPca(pca, pts), [3, 0, -3, 0, 0, 1, 0, -1], { atol: 1e-12, what: "projection" });
  // Flipping the data's orientation does not flip the axes.
  const flipped = fitPca(pts.map((x) => -x), 4, 3);
  assertClose(flipped.components[0], u, { atol: 1e-12, what: "PC1 of the mirrored set" });
});

Deno.test("plot: Jacobi eigen-solver: A v = lambda v with orthonormal vectors on a random 7x7", () => {
  const rng = new Rng(3), d = 7;
  const a = new Float64Array(d * d);
  for (let i = 0; i < d; i++) {
    for (let j = i; j < d; j++) a[i * d + j] = a[j * d + i] = rng.normal();
  }
  const { values, vectors } = symmetricEigen(a, d);
  for (let e = 0; e < d; e++) {
    const av = Array.from({ length: d }, (_, i) => vectors[e].reduce((s, x, j) => s + a[i * d + j] * x, 0));
    assertClose(av, Array.from(vectors[e], (x) => values[e] * x), { atol: 1e-12, what: `A v${e}` });
    for (let f = 0; f < d; f++) {
      const dot = vectors[e].reduce((s, x, j) => s + x * vectors[f][j], 0);
      assertClose([dot], [e === f ? 1 : 0], { atol: 1e-12, what: `v${e} . v${f}` });
    }
  }
  assertThrows(() => fitPca([1, 2, 3], 3, 1), /dim = 1, expected an integer >= 2/);
});

Deno.test("plot: component examples: one labelled row per component, pixels as grey runs", () => {
  const blank = () => new Array(784).fill(0);
  const img = blank();
  img[7 * 28 + 5] = 255; // one white pixel at (x 5, y 7)
  for (let x = 10; x < 14; x++) img[20 * 28 + x] = 128; // a run of 4 equal greys
  const ex = {
    classNames: ["T-shirt/top", "Trouser", "Pullover"],
    rows: [
      { classIndex: 2, component: 1, weight: 0.37, images: [img, blank(), blank()] },
      { classIndex: 2, component: 0, weight: 0.63, images: [blank()] },
      { classIndex: 0, component: 1, weight: 0.004, images: [] },
    ],
  };
  const doc = parse(componentExamplesFigure(ex, "Pullover"));
  assertFrame(doc, "Pullover");
  const rows: Doc[] = Array.from(doc.querySelectorAll('g[aria-label="component row"]'));
  assertEquals(rows.length, 3);
  assertEquals(rows.map((r: Doc) => r.querySelectorAll('g[aria-label="example image"]').length), [3, 1, 0]);
  assertEquals(texts(doc, 'text[aria-label="row label"]'), [
    "Pullover — component 1 (weight 0.37)",
    "Pullover — component 0 (weight 0.63)",
    "T-shirt/top — component 1 (weight 0.00)",
  ]);
  const first = rows[0].querySelector('g[aria-label="example image"]');
  const paths = Array.from(first.querySelectorAll("path")).map((
    p: Doc,
  ) => [p.getAttribute("fill"), p.getAttribute("d")]);
  // 128 of 255 on 32 levels is level 16 of 31 -> grey 132.
  assertEquals(paths, [["#848484", "M10 20h4v1h-4z"], ["#ffffff", "M5 7h1v1h-1z"]]);
  assert(texts(doc, "text").includes("(no examples found)"));
  assertThrows(
    () => componentExamplesFigure({ ...ex, rows: [{ ...ex.rows[0], images: [[1, 2]] }] }),
    /rows\[0\]\.images\[0\] has 2 pixels, expected 784/,
  );
  assertThrows(
    () => componentExamplesFigure({ ...ex, rows: [{ ...ex.rows[0], classIndex: 3 }] }),
    /classIndex = 3/,
  );
});

Deno.test("plot: reliability diagram: a bar and a gap bar per non-empty bin, the diagonal, the ECE", () => {
  const bins = Array.from(
    { length: 10 },
    (_, i) => ({ lo: i / 10, hi: (i + 1) / 10, count: 0, accuracy: 0, confidence: 0 }),
  );
  const filled = [[3, 10, 0.2, 0.35], [6, 40, 0.7, 0.65], [9, 200, 0.9, 0.96]];
  for (const [b, count, acc, conf] of filled) {
    bins[b] = { ...bins[b], count, accuracy: acc, confidence: conf };
  }
  const r: Reliability = { closed: "right", bins, ece: 0.029849 };
  const doc = parse(reliabilityFigure(r, "LDA"));
  assertFrame(doc, "LDA");
  const bars = marks(doc, "accuracy bar", "rect");
  assertEquals(bars.length, 3);
  assertEquals(marks(doc, "gap bar", "rect").length, 3);
  // Bar heights are proportional to accuracy (0.2 : 0.7 : 0.9).
  const heights = bars.map((b: Doc) => Number(b.getAttribute("height")));
  assertClose([heights[1] / heights[0], heights[2] / heights[0]], [3.5, 4.5], {
    rtol: 1e-3,
    what: "bar heights",
  });
  // The gap bar of bin 6 spans accuracy 0.7 down to confidence 0.65: a quarter of bin 3's bar height.
  const gap = Number(marks(doc, "gap bar", "rect")[1].getAttribute("height"));
  assertClose([gap / heights[0]], [0.25], { rtol: 1e-2, what: "gap height" });
  assertEquals(marks(doc, "diagonal", "path").length, 1);
  assertEquals(formatEce(0.029849), "ECE = 2.98%");
  assertEquals(texts(doc, 'g[aria-description="ece"] text'), ["ECE = 2.98%"]);
  assertEquals(texts(doc, 'g[aria-label="legend"] text'), [
    "Accuracy",
    "Gap to mean confidence",
    "Perfect calibration",
  ]);
  assert(texts(doc, 'text[aria-label="subtitle"]')[0].includes("(lo, hi]"));
  assertThrows(() => reliabilityFigure({ ...r, bins: [] }), /no bins/);
});

Deno.test("plot: confidence histogram: 20 bars and the two labelled lines where they belong", () => {
  const bins = Array.from(
    { length: 20 },
    (_, i) => ({ lo: i / 20, hi: (i + 1) / 20, fraction: i >= 15 ? 0.2 : 0 }),
  );
  const doc = parse(confidenceHistogramFigure({ bins, meanConfidence: 0.9, accuracy: 0.85 }, "Confidence"));
  assertFrame(doc, "Confidence");
  const bars = marks(doc, "histogram bar", "rect");
  assertEquals(bars.length, 20);
  const mean = marks(doc, "mean confidence", "line"), acc = marks(doc, "accuracy", "line");
  assertEquals([mean.length, acc.length], [1, 1]);
  // Bin 18 starts at 0.9 and bin 17 at 0.85: the lines sit on those bar edges (bars have no inset).
  const left = (b: number) => Number(bars[b].getAttribute("x"));
  assertClose([Number(mean[0].getAttribute("x1")), Number(acc[0].getAttribute("x1"))], [left(18), left(17)], {
    atol: 0.02,
    what: "line positions",
  });
  assertEquals(texts(doc, 'g[aria-label="legend"] text').slice(1), [
    "Mean confidence = 0.900",
    "Accuracy = 0.850",
  ]);
});

Deno.test("plot: sweep figure: band, means, paper points with error bars only where a std is known", () => {
  const points = [-3, -2, -1, 0, 1].map((l, i) => ({ logLambda: l, mean: 0.93 + 0.001 * i, std: 0.001 }));
  const paper = [{ logLambda: -3, mean: 0.9394, std: 0.0006 }, { logLambda: 1, mean: 0.935 }];
  const doc = parse(sweepFigure(points, { ylabel: "Test accuracy", band: 2, paper, title: "Sweep" }));
  assertFrame(doc, "Sweep");
  assertEquals(marks(doc, "band", "path").length, 1);
  assertEquals(marks(doc, "mean", "circle").length, 5);
  assertEquals(marks(doc, "paper", "path").length, 2);
  assertEquals(marks(doc, "paper error bar", "line").length, 1);
  const legend = texts(doc, 'g[aria-label="legend"] text');
  assertEquals(legend, ["This reproduction: mean ± 2 std", "Paper: mean ± 2 std"]);
  assert(texts(doc, "text").includes("Test accuracy") && texts(doc, "text").includes("log₁₀ λ"));
  assertThrows(() => sweepFigure(points, { ylabel: "x", band: 3 as 1 }), /band = 3, expected 1 or 2/);
  parse(sweepFigure([], { ylabel: "ECE", band: 1, paperRange: { lo: 3.6, hi: 4.1 } }));
});

Deno.test("plot: side by side keeps each figure whole inside one document", () => {
  const bins = [{ lo: 0, hi: 1, count: 5, accuracy: 0.8, confidence: 0.9 }];
  const a = reliabilityFigure({ closed: "right", bins, ece: 0.1 }, "LDA");
  const b = reliabilityFigure({ closed: "right", bins, ece: 0.2 }, "Softmax");
  const doc = parse(sideBySide([a, b], ["LDA + DNLL", "Softmax + CE"]));
  assertEquals(texts(doc, 'text[aria-label="title"]'), ["LDA + DNLL vs Softmax + CE", "LDA", "Softmax"]);
  assertEquals(texts(doc, 'g[aria-description="ece"] text'), ["ECE = 10.00%", "ECE = 20.00%"]);
  assertThrows(() => sideBySide([]), /at least one svg/);
});

Deno.test("plot: the strict XML check rejects what a forgiving parser would accept", () => {
  const ns = 'xmlns="http://www.w3.org/2000/svg" width="10" height="10"';
  assertWellFormedSvg(
    `<?xml version="1.0" encoding="UTF-8"?>\n<svg ${ns}><g><text>a &amp; b</text></g></svg>\n`,
  );
  for (
    const [bad, why] of [
      [`<svg ${ns}><g></svg>`, /closes <g>/],
      [`<svg ${ns}><text>a & b</text></svg>`, /bad entity/],
      [`<svg ${ns}><rect x="1" x="2"/></svg>`, /duplicate attribute x/],
      [`<svg ${ns}><rect x=1/></svg>`, /bad attribute/],
      [`<svg ${ns}></svg><svg ${ns}></svg>`, /one root/],
      [`<svg ${ns}><g>`, /unclosed <g>/],
      [`junk<svg ${ns}></svg>`, /text outside the root/],
      [`<svg width="1" height="1"></svg>`, /SVG namespace/],
    ] as const
  ) {
    assertThrows(() => assertWellFormedSvg(bad), why);
  }
});
