// `deno task figures RUN_DIR`: a tiny run's figures and page, redrawn from its saved files alone (no GPU in
// the redraw), are byte for byte what the run drew; bad arguments exit 2 and write nothing.

import { fileURLToPath } from "node:url";
import { deepStrictEqual, equal, match, ok } from "node:assert/strict";
import { existsSync } from "node:fs";
import { parseRunArgs } from "../experiments/cli.ts";
import { runPlan } from "../experiments/run.ts";
import { writeTinyDataset } from "./tiny_data.ts";
import { MDA_RUN_FIGURES, tempDir } from "./util.ts";

const root = fileURLToPath(new URL("..", import.meta.url));

async function deno(...args: string[]) {
  const out = await new Deno.Command(Deno.execPath(), { args, cwd: root, stdout: "piped", stderr: "piped" })
    .output();
  const dec = (b: Uint8Array) => new TextDecoder().decode(b);
  return { code: out.code, stdout: dec(out.stdout), stderr: dec(out.stderr) };
}

async function filesOf(dir: string): Promise<Map<string, Uint8Array>> {
  const m = new Map<string, Uint8Array>();
  for await (const e of Deno.readDir(dir)) {
    if (e.isFile && /\.(svg|md)$|^figures\.json$/.test(e.name)) {
      m.set(e.name, await Deno.readFile(`${dir}/${e.name}`));
    }
  }
  return m;
}

Deno.test("figures: a run's figures and page redrawn from its files equal what the run drew", async () => {
  const tmp = await tempDir("mda-figures-test-");
  await writeTinyDataset(`${tmp}/data`);
  const run = `${tmp}/run`;
  const [r] = await runPlan(
    parseRunArgs([
      "fashion_mda_quick",
      "--data",
      `${tmp}/data`,
      "--out",
      run,
      "--batch-size",
      "16",
      "--epochs",
      "1",
    ]),
    { quiet: true },
  );
  equal(r.status, "finished");
  ok(existsSync(`${run}/components.json`), "the run saves the component examples' pixels");
  const drawn = await filesOf(run);
  for (
    const f of MDA_RUN_FIGURES
  ) {
    ok(drawn.has(f), `the run drew ${f}`);
  }

  // Into another folder (created, two levels deep): every figure, figures.json and README.md the same.
  const elsewhere = `${tmp}/page/a/b`;
  const res = await deno("run", "-A", "experiments/redraw.ts", run, "--out", elsewhere);
  equal(res.code, 0, res.stderr);
  deepStrictEqual(await filesOf(elsewhere), drawn);

  // In place, after the figures were deleted: the same bytes again.
  for (const f of drawn.keys()) await Deno.remove(`${run}/${f}`);
  const again = await deno("run", "-A", "experiments/redraw.ts", run);
  equal(again.code, 0, again.stderr);
  deepStrictEqual(await filesOf(run), drawn);

  // --pdf: each figure also as a PDF beside its SVG (lib/plot/pdf.ts, tested in pdf_test.ts), the rest the same.
  const withPdf = `${tmp}/pdf`;
  const pdf = await deno("run", "-A", "experiments/redraw.ts", run, "--out", withPdf, "--pdf");
  equal(pdf.code, 0, pdf.stderr);
  const withPdfFiles = await filesOf(withPdf);
  const page = new TextDecoder().decode(withPdfFiles.get("README.md"));
  withPdfFiles.delete("README.md");
  const drawnButPage = new Map(drawn);
  drawnButPage.delete("README.md");
  deepStrictEqual(withPdfFiles, drawnButPage);
  // The page links each figure's PDF beside the figure, and is otherwise the page the run drew.
  equal(page.replace(/ \(\[PDF\]\([a-z_]+\.pdf\)\)/g, ""), new TextDecoder().decode(drawn.get("README.md")));
  for (const f of MDA_RUN_FIGURES) {
    const bytes = await Deno.readFile(`${withPdf}/${f.replace(/\.svg$/, ".pdf")}`);
    equal(new TextDecoder().decode(bytes.slice(0, 8)), "%PDF-1.4", f);
  }
  match(pdf.stderr, /accuracy\.pdf/);
  match(page, /\*Train and test accuracy\* \(\[PDF\]\(accuracy\.pdf\)\)/);
});

Deno.test("figures: --help, and bad arguments exit 2 naming the argument, writing nothing", async () => {
  const help = await deno("run", "-A", "experiments/redraw.ts", "--help");
  equal(help.code, 0);
  match(help.stdout, /usage: deno task figures RUN_DIR/);
  match(help.stdout, /--out DIR .*\(default: RUN_DIR\)/);
  const tmp = await tempDir("mda-figures-bad-");
  await Deno.mkdir(`${tmp}/notarun`);
  await Deno.writeTextFile(`${tmp}/file`, "x");
  const cases: [string[], RegExp][] = [
    [[], /missing RUN_DIR/],
    [[`${tmp}/missing`], /RUN_DIR .*missing: no such directory/],
    [[`${tmp}/file`], /RUN_DIR .*file: not a directory/],
    [[`${tmp}/notarun`], /no manifest\.json, so not a run folder/],
    [[`${tmp}/notarun`, "--bogus"], /unknown flag --bogus/],
    [[`${tmp}/notarun`, "--out"], /--out needs a value/],
  ];
  for (const [args, re] of cases) {
    const r = await deno("run", "-A", "experiments/redraw.ts", ...args);
    equal(r.code, 2, `${args.join(" ")}: ${r.stderr}`);
    match(r.stderr, re);
    equal(r.stderr.trim().split("\n").length, 1, r.stderr);
  }
  deepStrictEqual([...Deno.readDirSync(`${tmp}/notarun`)], []);
});
