// node build.mjs OUT.wasm: app.js as a component of gatehouse:plugin/plugin@0.1.0.
import { componentize } from "@bytecodealliance/componentize-js";
import { readFile, writeFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { dirname, join } from "node:path";

const here = dirname(fileURLToPath(import.meta.url));
const out = process.argv[2] ?? join(here, "js-bright.wasm");
const source = await readFile(join(here, "app.js"), "utf8");
const { component } = await componentize(source, {
  witPath: join(here, "..", "..", "wit"),
  worldName: "gatehouse:plugin/plugin@0.1.0",
});
await writeFile(out, component);
console.log(`${out}: ${component.length} bytes`);
