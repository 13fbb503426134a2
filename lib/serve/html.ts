// The results server's HTML: the index of runs and reports, a run's page, a comparison page and report
// pages (their README.md rendered). Figures are drawn in the page by /static/client.js from the run's
// data (the same functions that wrote the SVG files); without the script the saved SVG files show.

import { encodePath, formatSeconds, statusNote } from "./common.ts";
import type { ReportSummary, RunSummary } from "./scan.ts";

export function escapeHtml(text: string): string {
  return text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;")
    .replace(/'/g, "&#39;");
}

const STYLE = `
body { font-family: Helvetica, Arial, sans-serif; margin: 1.5rem auto; max-width: 1180px; padding: 0 1rem; color: #111; }
h1 { font-size: 1.5rem; } h2 { font-size: 1.2rem; margin-top: 2rem; }
table { border-collapse: collapse; margin: 0.5rem 0 1rem; font-size: 0.92rem; }
th, td { border-bottom: 1px solid #ddd; padding: 0.3rem 0.6rem; text-align: left; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
.status-running { color: #b35900; font-weight: bold; } .status-finished { color: #1a7f37; }
.status-failed, .status-stopped, .status-killed { color: #b00020; }
figure { margin: 1rem 0; } figure .svg svg, figure img { max-width: 100%; height: auto; }
figcaption { color: #444; font-size: 0.9rem; }
.figures { display: flex; flex-wrap: wrap; gap: 1rem; } .figures figure { flex: 0 1 560px; }
#status { font-size: 1.05rem; padding: 0.5rem 0.8rem; background: #f4f6f8; border-radius: 4px; }
code { background: #f4f6f8; padding: 0 0.2rem; } nav a { margin-right: 1rem; }
`;

function page(title: string, body: string, script = false): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${escapeHtml(title)}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>${STYLE}</style>${script ? `<script type="module" src="/static/client.js"></script>` : ""}</head>
<body><nav><a href="/">All results</a></nav>
${body}
</body></html>
`;
}

const fmt = (
  x: number | undefined,
  digits = 4,
) => (x === undefined || !Number.isFinite(x) ? "" : x.toFixed(digits));

function statusTitle(status: string): string {
  const note = statusNote(status);
  return note ? ` title="${escapeHtml(note)}"` : "";
}

/**
 * The index: every run and report under `root`; `trainPage`, when given, is the URL of the page that
 * trains an experiment in the tab (web/train.html: the quick one, or the notebook's), linked at the top.
 */
export function indexPage(
  root: string,
  runs: RunSummary[],
  reports: ReportSummary[],
  trainPage?: string,
): string {
  const rows = runs.map((r) =>
    `<tr data-run="${escapeHtml(r.dir)}"><td><input type="checkbox" name="run" value="${
      escapeHtml(r.dir)
    }"></td>` +
    `<td><a href="/view/${encodePath(r.dir)}">${escapeHtml(r.dir)}</a></td>` +
    `<td class="status-${escapeHtml(r.status)}"${statusTitle(r.status)}>${escapeHtml(r.status)}</td>` +
    `<td class="num">${r.epochsDone}${r.epochsTotal !== undefined ? ` / ${r.epochsTotal}` : ""}</td>` +
    `<td class="num">${fmt(r.finalTestAccuracy)}</td><td class="num">${fmt(r.bestTestAccuracy)}</td>` +
    `<td class="num">${fmt(r.lastTrainLoss)}</td><td class="num">${formatSeconds(r.etaSeconds)}</td>` +
    `<td>${escapeHtml(r.adapter ?? "")}${r.softwareAdapter ? " (software)" : ""}</td></tr>`
  ).join("\n");
  const reportItems = reports.map((p) =>
    `<li><a href="/view/${encodePath(p.dir)}">${escapeHtml(p.title)}</a> <code>${
      escapeHtml(p.dir)
    }</code></li>`
  ).join("\n");
  const anyRunning = runs.some((r) => r.status === "running");
  return page(
    "Results",
    `<h1>Results</h1><p>From <code>${escapeHtml(root)}</code>: ${runs.length} run${
      runs.length === 1 ? "" : "s"
    }, ` +
      `${reports.length} report page${reports.length === 1 ? "" : "s"}.` +
      (anyRunning
        ? ` Runs in progress: the index reloads every 10 s; a run's page updates as each epoch lands.`
        : "") +
      `</p>` +
      (trainPage
        ? `<p><a id="train-in-tab" href="${escapeHtml(trainPage)}">Train fashion_mda_quick in this tab</a> ` +
          `or <a href="${escapeHtml(trainPage)}?experiment=fashion_mda">the notebook's fashion_mda</a> ` +
          `(100 epochs: for a GPU) (WebGPU in your browser, the same kernels; the checkpoint downloads as ` +
          `safetensors).</p>`
        : "") +
      (anyRunning ? `<meta http-equiv="refresh" content="10">` : "") +
      `<h2>Runs</h2><form action="/compare" method="get"><table id="runs"><thead><tr><th></th><th>Run folder</th>` +
      `<th>Status</th><th class="num">Epoch</th><th class="num">Final test acc.</th><th class="num">Best test acc.</th>` +
      `<th class="num">Train loss</th><th class="num">ETA</th><th>Adapter</th></tr></thead><tbody>\n${rows}\n</tbody></table>` +
      `<button type="submit">Compare the selected runs' curves</button></form>` +
      `<h2>Reports</h2><ul id="reports">${reportItems || "<li>none</li>"}</ul>`,
  );
}

// deno-lint-ignore no-explicit-any
type Json = Record<string, any>;

/** A run's page; `metrics` is the run's final evaluation, when it has one (scan.ts's readRun). */
export function runPage(
  summary: RunSummary,
  manifest: Json | undefined,
  metrics: Json | undefined,
  figures: { file: string; caption: string }[],
): string {
  const { dir, name, status } = summary;
  const hyper = manifest?.hyperparameters ?? {};
  const hyperRows = Object.entries(hyper).map(([k, v]) => {
    const { value, source } = v as { value: unknown; source: string };
    return `<tr><td>${escapeHtml(k)}</td><td>${escapeHtml(JSON.stringify(value))}</td><td>${
      escapeHtml(source ?? "")
    }</td></tr>`;
  }).join("");
  const final = metrics?.final;
  const finalRows = final
    ? Object.entries(final).map(([k, v]) =>
      `<tr><td>${escapeHtml(k)}</td><td class="num">${typeof v === "number" ? v.toFixed(4) : ""}</td></tr>`
    ).join("")
    : "";
  // The saved SVG files, shown until (or unless) the script draws the same figures from the data.
  const figs = (figures.length ? figures : [{ file: "accuracy.svg", caption: "Train and test accuracy" }, {
    file: "loss.svg",
    caption: "Mean train loss (as reported)",
  }]).map((f) =>
    `<figure id="fig-${escapeHtml(f.file)}"><div class="svg"><img src="/files/${encodePath(dir)}/${
      encodeURIComponent(f.file)
    }" ` +
    `alt="${escapeHtml(f.caption)}" onerror="this.remove()"></div><figcaption>${
      escapeHtml(f.caption)
    }</figcaption></figure>`
  ).join("\n");
  return page(
    name,
    `<main data-page="run" data-dir="${escapeHtml(dir)}">` +
      `<h1>${escapeHtml(name)}</h1><p><code>${escapeHtml(dir)}</code> · ` +
      `<a href="/files/${encodePath(dir)}/">files</a> · <a href="/compare?run=${
        encodeURIComponent(dir)
      }">compare with…</a></p>` +
      `<div id="status" class="status-${escapeHtml(status)}"${statusTitle(status)}>${
        escapeHtml(status)
      }</div>` +
      `<div class="figures" id="figures">\n${figs}\n</div>` +
      (finalRows ? `<h2>Final metrics</h2><table>${finalRows}</table>` : "") +
      `<h2>Hyperparameters</h2><table><tr><th>name</th><th>value</th><th>from</th></tr>${hyperRows}</table>` +
      `<p>${escapeHtml(manifest?.description ?? "")}</p></main>`,
    true,
  );
}

export function comparePage(dirs: string[], all: RunSummary[]): string {
  const options = all.map((r) =>
    `<label><input type="checkbox" name="run" value="${escapeHtml(r.dir)}"${
      dirs.includes(r.dir) ? " checked" : ""
    }> ` +
    `${escapeHtml(r.dir)}</label><br>`
  ).join("\n");
  return page(
    "Compare runs",
    `<main data-page="compare" data-runs="${escapeHtml(JSON.stringify(dirs))}"><h1>Compare runs</h1>` +
      `<p>${
        dirs.map((d) => `<a href="/view/${encodePath(d)}">${escapeHtml(d)}</a>`).join(", ") ||
        "No run selected."
      }</p>` +
      `<div id="status"></div><div class="figures" id="figures"></div>` +
      `<h2>Runs</h2><form action="/compare" method="get">${options}<button type="submit">Compare</button></form></main>`,
    true,
  );
}

/** A report folder's README.md, rendered (headings, paragraphs, lists, tables, images, links, code). */
export function reportPage(dir: string, markdown: string): string {
  const title = markdown.match(/^# (.+)$/m)?.[1] ?? dir;
  return page(title, `<main data-page="report">${markdownToHtml(markdown, dir)}</main>`);
}

function inline(text: string, dir: string): string {
  let s = escapeHtml(text);
  const target = (href: string) => {
    // Only web and mail links go out as written: a README from a results folder someone sent must not run
    // script in the page (javascript:, data:, vbscript:) when its link is clicked.
    if (/^[a-z][a-z0-9+.-]*:/i.test(href)) return /^(https?|mailto):/i.test(href) ? href : "#";
    if (href.startsWith("/") || href.startsWith("#")) return href;
    // Markdown links are URL-encoded already ("live%20run/README.md"): decoded here, encoded once below.
    const decode = (seg: string) => {
      try {
        return decodeURIComponent(seg);
      } catch {
        return seg;
      }
    };
    const path = [...dir.split("/").filter(Boolean), ...href.split("/").map(decode)];
    const norm: string[] = [];
    for (const seg of path) {
      if (seg === "..") norm.pop();
      else if (seg !== ".") norm.push(seg);
    }
    const joined = norm.join("/");
    if (/(^|\/)README\.md$/.test(joined)) return `/view/${encodePath(joined.replace(/\/?README\.md$/, ""))}`;
    return `/files/${encodePath(joined)}`;
  };
  s = s.replace(/!\[([^\]]*)\]\(([^)\s]+)\)/g, (_, alt, src) => `<img src="${target(src)}" alt="${alt}">`);
  s = s.replace(/\[([^\]]+)\]\(([^)\s]+)\)/g, (_, t, href) => `<a href="${target(href)}">${t}</a>`);
  s = s.replace(/`([^`]+)`/g, "<code>$1</code>");
  s = s.replace(/\*\*([^*]+)\*\*/g, "<strong>$1</strong>");
  return s;
}

export function markdownToHtml(md: string, dir: string): string {
  const lines = md.split("\n");
  const out: string[] = [];
  let i = 0;
  while (i < lines.length) {
    const line = lines[i];
    if (!line.trim()) {
      i++;
      continue;
    }
    const h = /^(#{1,4}) (.*)$/.exec(line);
    if (h) {
      out.push(`<h${h[1].length}>${inline(h[2], dir)}</h${h[1].length}>`);
      i++;
    } else if (line.startsWith("|")) {
      const rows: string[][] = [];
      while (i < lines.length && lines[i].startsWith("|")) {
        const cells = lines[i].trim().replace(/^\||\|$/g, "").split("|").map((c) => c.trim());
        if (!cells.every((c) => /^:?-+:?$/.test(c))) rows.push(cells);
        i++;
      }
      const [head, ...body] = rows;
      out.push(
        `<table><thead><tr>${head.map((c) => `<th>${inline(c, dir)}</th>`).join("")}</tr></thead><tbody>` +
          body.map((r) => `<tr>${r.map((c) => `<td>${inline(c, dir)}</td>`).join("")}</tr>`).join("") +
          `</tbody></table>`,
      );
    } else if (/^\s*[-*] /.test(line)) {
      const items: string[] = [];
      while (i < lines.length && /^\s*[-*] /.test(lines[i])) items.push(lines[i++].replace(/^\s*[-*] /, ""));
      out.push(`<ul>${items.map((t) => `<li>${inline(t, dir)}</li>`).join("")}</ul>`);
    } else if (line.startsWith("    ") || line.startsWith("```")) {
      const code: string[] = [];
      if (line.startsWith("```")) {
        i++;
        while (i < lines.length && !lines[i].startsWith("```")) code.push(lines[i++]);
        i++;
      } else while (i < lines.length && lines[i].startsWith("    ")) code.push(lines[i++].slice(4));
      out.push(`<pre><code>${escapeHtml(code.join("\n"))}</code></pre>`);
    } else {
      const para: string[] = [];
      while (i < lines.length && lines[i].trim() && !/^(#|\||\s*[-*] |```)/.test(lines[i])) {
        para.push(lines[i++]);
      }
      out.push(`<p>${inline(para.join(" "), dir)}</p>`);
    }
  }
  return out.join("\n");
}

export function errorPage(status: number, message: string): string {
  return page(`${status}`, `<h1>${status}</h1><p>${escapeHtml(message)}</p>`);
}
