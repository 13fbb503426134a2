// The WEBGPU setting (lib/gpu/implementation.ts): accepted values, and one clear line for a bad one.
// Which implementation actually runs is checked by running the suites under each (deno task test:dawn).

import { deepStrictEqual, throws } from "node:assert/strict";
import { requestedImplementation } from "../lib/gpu/implementation.ts";
import { getGpu } from "../lib/gpu/device.ts";

function withSetting<T>(value: string | undefined, f: () => T): T {
  const old = Deno.env.get("WEBGPU");
  if (value === undefined) Deno.env.delete("WEBGPU");
  else Deno.env.set("WEBGPU", value);
  try {
    return f();
  } finally {
    if (old === undefined) Deno.env.delete("WEBGPU");
    else Deno.env.set("WEBGPU", old);
  }
}

Deno.test("implementation: WEBGPU picks wgpu (default) or Dawn, with an optional Dawn backend", () => {
  deepStrictEqual(withSetting(undefined, requestedImplementation), { name: "wgpu" });
  deepStrictEqual(withSetting("wgpu", requestedImplementation), { name: "wgpu" });
  deepStrictEqual(withSetting("dawn", requestedImplementation), { name: "dawn", dawnBackend: undefined });
  deepStrictEqual(withSetting("Dawn:OpenGL", requestedImplementation), {
    name: "dawn",
    dawnBackend: "opengl",
  });
  deepStrictEqual(withSetting("dawn:vulkan", requestedImplementation), {
    name: "dawn",
    dawnBackend: "vulkan",
  });
  for (const bad of ["webkit", "dawn:metal", "dawn:"]) {
    throws(
      () => withSetting(bad, requestedImplementation),
      new RegExp(`WEBGPU must be "wgpu", "dawn", "dawn:vulkan" or "dawn:opengl", got WEBGPU="${bad}"`),
    );
  }
});

Deno.test("implementation: the adapter report names the implementation, backend and feature level", async () => {
  const { report } = await getGpu();
  const expected = requestedImplementation().name;
  deepStrictEqual(report.implementation, expected);
  deepStrictEqual(["core", "compatibility"].includes(report.featureLevel), true);
  if (expected === "dawn") deepStrictEqual(["vulkan", "opengl"].includes(report.backend), true);
});
