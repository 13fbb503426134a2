import { deepStrictEqual as assertEquals, throws as assertThrows } from "node:assert/strict";
import { evalBound, u32Constants, unrollLoops } from "../lib/gpu/unroll.ts";

Deno.test("unroll: loop bounds from literals and u32 constants, with precedence", () => {
  const consts = u32Constants("const TP: u32 = 7u;\nconst R4: u32 = 2u;\noverride WG: u32 = 64u;\n");
  assertEquals([...consts], [["TP", 7], ["R4", 2]]);
  assertEquals(evalBound("TP + 2u", consts), 9);
  assertEquals(evalBound("TP - 1u * R4", consts), 5);
  assertEquals(evalBound("(TP - 1u) * R4 / 4u", consts), 3);
  assertThrows(() => evalBound("WG", consts), /WG is not a u32 const/);
  assertThrows(() => evalBound("p.n", consts), /cannot evaluate loop bound "p.n"/);
  // A constant may be an expression of the constants above it; one that is not (a call, a later name)
  // is left out.
  const derived = u32Constants(
    "const BM: u32 = 64u;\nconst WG: u32 = 256u;\nconst LOADS: u32 = BM * 16u / WG;\n" +
      "const LATER: u32 = BM + EARLY;\nconst EARLY: u32 = 1u;\nconst M: u32 = max(BM, 2u);\n",
  );
  assertEquals([...derived], [["BM", 64], ["WG", 256], ["LOADS", 4], ["EARLY", 1]]);
});

Deno.test("unroll: nested loops become scoped copies with literal counters", () => {
  const src = [
    "const N: u32 = 2u;",
    "// Loops marked `/* unroll */` in a comment are not loops.",
    "fn f() {",
    "  /* unroll */ for (var i = 0u; i < N; i++) {",
    "    /* unroll */ for (var j = 1u; j < i + 2u; j++) { a[i][j] = fi(i, j); } // } in a comment",
    "  }",
    "  for (var k = 0u; k < p.n; k++) { b[k] = 0.0; }",
    "}",
  ].join("\n");
  const out = unrollLoops(src);
  assertEquals(out.split("\n").filter((l) => l.includes("/* unroll */")).length, 1);
  const writes = [...out.matchAll(/a\[(\w+)\]\[(\w+)\] = fi\((\w+), (\w+)\)/g)].map((m) =>
    m.slice(1).join(",")
  );
  // j runs from 1 to i + 1: the inner bound sees the outer counter's literal.
  assertEquals(writes, ["0u,1u,0u,1u", "1u,1u,1u,1u", "1u,2u,1u,2u"]);
  // Loops without the marker stay loops.
  assertEquals(out.includes("for (var k = 0u; k < p.n; k++)"), true);
  // Every copy is its own block, so `let`s declared in the body do not clash.
  const code = out.replace(/\/\/.*$/gm, "");
  assertEquals((code.match(/\{/g) ?? []).length, (code.match(/\}/g) ?? []).length);
});

Deno.test("unroll: a marker before anything but a counted loop is an error naming the line", () => {
  assertThrows(
    () => unrollLoops("fn f() {\n  /* unroll */ for (var i = 0u; i <= 3u; i++) { }\n}"),
    /expected "\/\* unroll \*\/ for \(var i = <n>u; i < BOUND; i\+\+\) \{", got "\/\* unroll \*\/ for \(var i = 0u; i <= 3u; i\+\+\) \{ \}"/,
  );
});
