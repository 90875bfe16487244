// Bindings the Worker needs. The WorkerSender component creates every one of them;
// a missing one is a deployment bug, reported by name instead of failing later.

export const FETCH_BINDINGS = ["EMAIL_QUEUE", "EMAIL_ENQUEUE_TOKEN", "EMAIL_DOMAIN"];
export const QUEUE_BINDINGS = [
  "EMAIL_DLQ",
  "AWS_REGION",
  "AWS_ACCESS_KEY_ID",
  "AWS_SECRET_ACCESS_KEY",
  "EMAIL_DOMAIN",
  "EMAIL_DEFAULT_FROM",
  "EMAIL_CONFIGURATION_SET",
];

/** @returns {string[]} names of the bindings that are absent or empty */
export function missingBindings(env, names) {
  return names.filter((name) => env[name] === undefined || env[name] === null || env[name] === "");
}

/** @returns {string} the SES v2 endpoint: `SES_ENDPOINT` (tests) or the regional one */
export function sesEndpoint(env) {
  const base = env.SES_ENDPOINT || `https://email.${env.AWS_REGION}.amazonaws.com`;
  return base.replace(/\/+$/, "");
}
