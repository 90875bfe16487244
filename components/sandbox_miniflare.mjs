// The Worker half of `serverless-mail sandbox`: runs the workers the sandbox describes
// (the planned script with its planned bindings and consumers, plus a recorder that
// reports DLQ entries to the sandbox) in workerd through Miniflare, on 127.0.0.1.
// Usage: node sandbox_miniflare.mjs CONFIG.json. Prints one `SANDBOX_READY <url>` line
// once the Worker answers, then the workers' logs; stops on SIGTERM, SIGINT or when
// stdin closes (the sandbox went away), disposing of workerd so no process is left.
import { readFileSync } from "node:fs";
import { pathToFileURL } from "node:url";

const config = JSON.parse(readFileSync(process.argv[2], "utf8"));
const mod = await import(pathToFileURL(config.miniflare).href);
const { Miniflare, Log, LogLevel, convertV4MiniflareOptions } = mod.Miniflare ? mod : mod.default;

// The sandbox describes workers in Miniflare's classic (v4) options, the shape its docs
// and the Worker's own test config use; this Miniflare converts them to its own.
const mf = new Miniflare(
  convertV4MiniflareOptions({
    host: "127.0.0.1",
    port: config.port,
    log: new Log(LogLevel.WARN),
    // No network: a placeholder `request.cf` instead of fetching the real one.
    cf: false,
    workers: config.workers,
  }),
);

let stopping = false;
async function stop(code) {
  if (stopping) return;
  stopping = true;
  try {
    await mf.dispose();
  } finally {
    process.exit(code);
  }
}
process.on("SIGTERM", () => stop(0));
process.on("SIGINT", () => stop(0));
process.stdin.on("end", () => stop(0));
process.stdin.resume();

try {
  const url = await mf.ready;
  process.stdout.write(`SANDBOX_READY ${url.href}\n`);
} catch (error) {
  process.stderr.write(`SANDBOX_FAILED ${error?.stack ?? error}\n`);
  await stop(1);
}
