// serverless-mail Cloudflare Worker: `fetch` enqueues messages, `queue` sends them through SES v2
// and forwards the DLQ queue's dead letters to the stack's SQS dead-letter queue.
import { handleQueue } from "./consumer.js";
import { handleDeadLetters } from "./dead-letters.js";
import { handleFetch } from "./http.js";

// The duplicate guard's Durable Object class: a namespace binds to a class the main module exports.
export { MessageIdGuard } from "./guard.js";

export default {
  fetch: handleFetch,
  queue: (batch, env, ctx) => (env.EMAIL_DLQ_NAME && batch.queue === env.EMAIL_DLQ_NAME ? handleDeadLetters : handleQueue)(batch, env, ctx),
};
