// Bundle src/index.js into the one ES module the WorkerSender component uploads.
// `--check` rebuilds in memory and fails when the committed dist/worker.js differs,
// so CI proves the committed bundle is what the sources produce.
import { build } from "esbuild";
import { readFile, writeFile, mkdir } from "node:fs/promises";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { usesFormat, withoutProse } from "./schema-bundle.mjs";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");

const schemaProse = {
  name: "schema-without-prose",
  setup(build) {
    build.onLoad({ filter: /message\.schema\.json$/ }, async (args) => {
      const schema = JSON.parse(await readFile(args.path, "utf8"));
      if (usesFormat(schema)) {
        throw new Error("message.schema.json uses `format`, which the Worker's bundle does not check (see formatStub)");
      }
      return { contents: JSON.stringify(withoutProse(schema)), loader: "json" };
    });
  },
};

// @cfworker/json-schema's format checkers (dates, URIs, e-mail, ... : 6 KB) serve the
// `format` keyword, which the message schema does not use (the build fails if it ever
// does, above: the Lambda's validator would have to check it too). Without them
// `format` is an annotation, JSON Schema 2020-12's default.
const formatStub = {
  name: "json-schema-format-stub",
  setup(build) {
    build.onResolve({ filter: /^\.\/format\.js$/ }, (args) =>
      args.importer.includes("@cfworker/json-schema") ? { path: "format", namespace: "stub" } : undefined,
    );
    build.onLoad({ filter: /.*/, namespace: "stub" }, () => ({ contents: "export const format = {};", loader: "js" }));
  },
};

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
  plugins: [schemaProse, formatStub],
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
