// Bundle src/index.js into the one ES module the WorkerSender component uploads.
// `--check` rebuilds in memory and fails when the committed dist/worker.js differs,
// so CI proves the committed bundle is what the sources produce.
import { build } from "esbuild";
import { readFile, writeFile, mkdir } from "node:fs/promises";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const outfile = resolve(root, "dist/worker.js");
const check = process.argv.includes("--check");

const result = await build({
  absWorkingDir: root,
  entryPoints: ["src/index.js"],
  bundle: true,
  format: "esm",
  platform: "neutral",
  mainFields: ["module", "main"],
  conditions: ["workerd", "worker", "browser"],
  target: "es2022",
  // Provided by workerd at run time (the Durable Object base class), never bundled.
  external: ["cloudflare:workers"],
  minify: true,
  legalComments: "none",
  charset: "utf8",
  write: false,
  logLevel: "warning",
});
const fresh = result.outputFiles[0].contents;

if (check) {
  const committed = await readFile(outfile).catch(() => null);
  if (!committed || Buffer.compare(Buffer.from(fresh), committed) !== 0) {
    console.error(`check-bundle: ${outfile} differs from a fresh build of src/; run \`npm run build\` and commit it.`);
    process.exit(1);
  }
  console.log(`check-bundle: dist/worker.js matches a fresh build (${fresh.byteLength} bytes)`);
} else {
  await mkdir(dirname(outfile), { recursive: true });
  await writeFile(outfile, fresh);
  console.log(`build: wrote dist/worker.js (${fresh.byteLength} bytes)`);
}
