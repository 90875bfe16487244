// serverless-mail Cloudflare Worker: `fetch` enqueues messages, `queue` sends them through SES v2.
import { handleQueue } from "./consumer.js";
import { handleFetch } from "./http.js";

export default {
  fetch: handleFetch,
  queue: handleQueue,
};
