// The Python that can import torch: DNLL_PYTHON if set, else Debian's /usr/bin/python3 (where
// python3-torch installs), else python3 on PATH. Undefined when none can.

export function findTorchPython(): string | undefined {
  for (const python of [Deno.env.get("DNLL_PYTHON"), "/usr/bin/python3", "python3"]) {
    if (!python) continue;
    try {
      const r = new Deno.Command(python, { args: ["-c", "import torch"], stdout: "null", stderr: "null" })
        .outputSync();
      if (r.success) return python;
    } catch {
      // not installed under that name: try the next
    }
  }
  return undefined;
}
