// Structured logs: one JSON object a line, so Workers Logs can filter on fields.
// Never log bodies or full addresses: ids, counts and outcomes are enough to trace a message.

/** @param {"info"|"warn"|"error"} level @param {string} event @param {Record<string, unknown>} fields */
export function log(level, event, fields = {}) {
  const line = JSON.stringify({ level, event, ...fields });
  if (level === "error") console.error(line);
  else if (level === "warn") console.warn(line);
  else console.log(line);
}
