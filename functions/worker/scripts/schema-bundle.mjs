// What the Worker's bundle keeps of the message schema (scripts/build.mjs), apart so a
// test can check it (tests/unit/test_worker_bundle.py).

// The message schema's prose (`description`, `title`, `$comment`, the `…Why` notes and
// `x-mailbox`, which only points people to the address rules) is for people and the
// docs; validation never reads it. Bundled without it, the Worker is about 1 KB gzip
// smaller (bench/bench_worker.mjs: the 20 KB target).
const PROSE = new Set(["description", "title", "$comment", "x-mailbox"]);
export const withoutProse = (value) =>
  Array.isArray(value)
    ? value.map(withoutProse)
    : value && typeof value === "object"
      ? Object.fromEntries(
          Object.entries(value)
            .filter(([key]) => !PROSE.has(key) && !key.endsWith("Why"))
            .map(([key, inner]) => [key, withoutProse(inner)]),
        )
      : value;
/** Whether the schema uses the `format` keyword anywhere. */
export const usesFormat = (value) =>
  Array.isArray(value)
    ? value.some(usesFormat)
    : Boolean(value && typeof value === "object") &&
      Object.entries(value).some(([key, inner]) => key === "format" || usesFormat(inner));
