// `deno task bench:implementations [--batch N] [--steps N] [--widths a,b,c,d,e,f] [--json]`
//
// Times the notebook's training step (bench/bench.ts --no-kernels) on every WebGPU implementation and
// backend this machine offers, one subprocess each, in one run: wgpu through OpenGL, wgpu through
// Vulkan, and Dawn (lib/gpu/implementation.ts; Vulkan, else OpenGL at feature level "compatibility").
// Each row names the adapter, implementation, backend and feature level that actually ran, the time of
// the first step (which compiles every pipeline) and the conv kernels of the second layer; ratios are
// against the first row that ran (wgpu GL) in the same run. An implementation without an adapter here is
// listed as unavailable, with the first line of its error.

import { fileURLToPath } from "node:url";
import { checkPositionals, type CommandSpec, parseOrExit, stringFlag } from "../experiments/flags.ts";
import { parseBenchArgs, WIDTHS_FLAG } from "./cli.ts";
import { findFirefox, launchHeadless } from "../test/headless.ts";
import { bundleForBrowser, repoUrl } from "../tools/browser_bundle.ts";

interface Variant {
  label: string;
  env: Record<string, string>;
}

const VARIANTS: Variant[] = [
  { label: "wgpu GL", env: { DENO_WEBGPU_BACKEND: "gl" } },
  { label: "wgpu Vulkan", env: { DENO_WEBGPU_BACKEND: "vulkan" } },
  { label: "Dawn", env: { WEBGPU: "dawn" } },
];

interface Row {
  label: string;
  ok: boolean;
  adapter?: string;
  implementation?: string;
  backend?: string;
  feature_level?: string;
  train_step_ms?: number;
  train_step_ms_each?: number[];
  /** The first step, which also compiles every pipeline. */
  warmup_step_ms?: number;
  /** The machine's 1, 5 and 15 minute load averages when the row finished (other jobs slow a row). */
  load?: number[];
  /** The conv kernels per layer and pass (lib/nn/conv2d/kernels.ts names). */
  conv_kernels?: Record<string, Record<string, string>>;
  error?: string;
}

const SPEC: CommandSpec = {
  name: "bench:implementations",
  summary: "Times the notebook's training step on wgpu GL, wgpu Vulkan and Dawn, one subprocess each " +
    "(bench/bench.ts --no-kernels), in one run; with --browser also in headless Chromium (WebGPU on " +
    "SwiftShader without a GPU: slow) and, where installed, headless Firefox (its own wgpu; Vulkan lavapipe " +
    "without a GPU).",
  positionals: [],
  flags: [
    { name: "batch", kind: "int", value: "N", meaning: "batch size, 1 to 256", default: "256" },
    { name: "steps", kind: "int", value: "N", meaning: "timed steps after a warm-up step", default: "2" },
    WIDTHS_FLAG,
    { name: "json", kind: "boolean", meaning: "print the rows as one JSON object last", default: "off" },
    { name: "browser", kind: "boolean", meaning: "also in headless Chromium and Firefox", default: "off" },
  ],
  examples: ["deno task bench:implementations --browser --batch 256 --steps 1"],
};

const flags = parseOrExit(SPEC, Deno.args, (p) => {
  checkPositionals(SPEC, p);
  // --batch, --steps and --widths go on to bench/bench.ts: its own checks run here, before any subprocess.
  const widths = stringFlag(p, "widths");
  const { batch, steps } = parseBenchArgs([
    "--batch",
    stringFlag(p, "batch") ?? "256",
    "--steps",
    stringFlag(p, "steps") ?? "2",
    ...(widths === undefined ? [] : ["--widths", widths]),
  ]);
  return { batch, steps: steps!, widths, json: p.values.json === true, browser: p.values.browser === true };
});

const bench = fileURLToPath(new URL("./bench.ts", import.meta.url));
const args = ["run", "-A", bench, "--json", "--no-kernels", "--no-torch", "--batch", String(flags.batch)];
args.push("--steps", String(flags.steps));
if (flags.widths) args.push("--widths", flags.widths);

const rows: Row[] = [];
for (const v of VARIANTS) {
  console.error(`${v.label}: running bench/bench.ts ${args.slice(3).join(" ")}`);
  const env = { ...v.env };
  // A variable of the other implementation must not leak into this one.
  const clear = v.env.WEBGPU ? ["DENO_WEBGPU_BACKEND"] : ["WEBGPU"];
  const out = await new Deno.Command(Deno.execPath(), {
    args,
    env: { ...Deno.env.toObject(), ...env, ...Object.fromEntries(clear.map((k) => [k, ""])) },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const stdout = new TextDecoder().decode(out.stdout).trim();
  const stderr = new TextDecoder().decode(out.stderr);
  const last = stdout.split("\n").pop() ?? "";
  if (!out.success || !last.startsWith("{")) {
    const error = stderr.split("\n").find((l) => /error/i.test(l) && !/XDG_RUNTIME_DIR/.test(l)) ??
      `exit code ${out.code}`;
    rows.push({ label: v.label, ok: false, error: error.trim() });
    console.error(`${v.label}: unavailable (${error.trim()})`);
    continue;
  }
  const r = JSON.parse(last);
  rows.push({
    label: v.label,
    ok: true,
    adapter: r.adapter,
    implementation: r.implementation,
    backend: r.backend,
    feature_level: r.feature_level,
    train_step_ms: r.train_step_ms,
    train_step_ms_each: r.train_step_ms_each,
    warmup_step_ms: r.warmup_step_ms,
    conv_kernels: r.conv_kernels,
    load: Deno.loadavg(),
  });
  console.error(`${v.label}: ${(r.train_step_ms / 1000).toFixed(2)} s per step`);
}

if (flags.browser) {
  rows.push({ ...await browserRow("Chromium"), load: Deno.loadavg() });
  rows.push({ ...await browserRow("Firefox"), load: Deno.loadavg() });
}

const reference = rows.find((r) => r.ok);
const lines = [
  `training step of the notebook model, batch ${flags.batch}${
    flags.widths ? `, widths ${flags.widths}` : ""
  }, mean of ${flags.steps} steps after a warm-up:`,
];
for (const r of rows) {
  if (!r.ok) {
    lines.push(`  ${r.label.padEnd(12)} unavailable: ${r.error}`);
    continue;
  }
  const ratio = reference && reference !== r
    ? `  ${(r.train_step_ms! / reference.train_step_ms!).toFixed(2)}x ${reference.label}`
    : "";
  const load = r.load ? `, load average ${r.load.map((l) => l.toFixed(1)).join(" ")} after it` : "";
  const warmup = r.warmup_step_ms === undefined
    ? ""
    : `, first step ${(r.warmup_step_ms / 1000).toFixed(1)} s`;
  lines.push(
    `  ${r.label.padEnd(12)} ${(r.train_step_ms! / 1000).toFixed(2).padStart(7)} s${ratio}  ` +
      `[${r.adapter}; ${r.implementation}, backend ${r.backend}, feature level ${r.feature_level}${warmup}${load}]`,
  );
  const second = r.conv_kernels && Object.entries(r.conv_kernels)[1];
  if (second) {
    lines.push(
      `${" ".repeat(16)}${second[0]}: forward ${second[1].forward}, input grad ${second[1].inputGrad}, ` +
        `weight grad ${second[1].weightGrad}`,
    );
  }
}
console.error(lines.join("\n"));
if (flags.json) {
  console.log(JSON.stringify({ batch: flags.batch, steps: flags.steps, rows }));
}

/** The same step in a headless browser tab (bench/browser_step.ts), served from a local server. */
async function browserRow(label: "Chromium" | "Firefox"): Promise<Row> {
  const firefox = label === "Firefox" ? findFirefox() : undefined;
  if (label === "Firefox" && !firefox) {
    return { label, ok: false, error: "no Firefox installed (firefox-esr)" };
  }
  console.error(`${label}: bundling bench/browser_step.ts and opening it headless`);
  const dir = await Deno.makeTempDir({ prefix: "bench-browser-" });
  try {
    await bundleForBrowser({
      entries: [repoUrl("bench/browser_step.ts")],
      outFile: `${dir}/step.js`,
      workDir: dir,
    });
    const js = await Deno.readFile(`${dir}/step.js`);
    let resolve!: (r: Record<string, unknown>) => void;
    const reported = new Promise<Record<string, unknown>>((r) => resolve = r);
    const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, async (req) => {
      const path = new URL(req.url).pathname;
      if (req.method === "POST" && path === "/report") resolve(await req.json());
      else if (path === "/step.js") {
        return new Response(js, { headers: { "content-type": "text/javascript" } });
      } else if (path === "/") {
        return new Response(`<!doctype html><script type="module" src="/step.js"></script>`, {
          headers: { "content-type": "text/html" },
        });
      }
      return new Response("ok");
    });
    const q = new URLSearchParams({ batch: String(flags.batch), steps: String(flags.steps) });
    if (flags.widths) q.set("widths", flags.widths);
    const url = `http://127.0.0.1:${server.addr.port}/?${q}`;
    const chrome = await launchHeadless(firefox ? "firefox" : "chromium", `${dir}/profile`, url, {
      binary: firefox,
    });
    const r: Record<string, unknown> = await Promise.race([
      reported,
      chrome.status.then(() => ({ error: `${label} exited` })),
    ]);
    try {
      chrome.kill("SIGTERM");
    } catch { /* gone */ }
    await chrome.status;
    await server.shutdown();
    if (r.error) return { label, ok: false, error: String(r.error).split("\n")[0] };
    console.error(`${label}: ${((r.train_step_ms as number) / 1000).toFixed(2)} s per step`);
    return { label, ok: true, ...r } as Row;
  } catch (e) {
    return { label, ok: false, error: e instanceof Error ? e.message.split("\n")[0] : String(e) };
  } finally {
    await new Promise((r) => setTimeout(r, 500)); // the browser's helpers release the profile
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}
