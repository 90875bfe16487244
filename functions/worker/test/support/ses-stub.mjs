// A scriptable SES v2 stand-in for fault injection, run in Node beside workerd.
// Answers HTTP/1.1 with Content-Length (workerd expects it). Per message id (its
// `message_id` EmailTag) a test scripts a list of answers: a status (with SES's error
// shape), `{ status, code, delayMs }`, or "network" (the socket is destroyed).
import { createServer } from "node:http";

/** @returns {Promise<{ url: string, close: () => Promise<void>, state: object }>} */
//
// With `ratePerSecond` it enforces a maximum send rate the way the load tests need: a
// token bucket of one second's worth of recipients, refilled continuously; a send over it
// is throttled (429 TooManyRequestsException, "Maximum sending rate exceeded.") and
// counted in `state.throttled`. `state.sentById` counts accepted sends per message id.
export async function startSesStub({ latencyMs = 0, ratePerSecond = null } = {}) {
  const state = { scripts: new Map(), requests: [], inFlight: 0, maxInFlight: 0, latencyMs, sent: 0, throttled: 0, sentById: new Map(), bucket: null };
  if (ratePerSecond) state.bucket = { rate: ratePerSecond, size: Math.max(1, ratePerSecond), tokens: Math.max(1, ratePerSecond), at: Date.now() };
  const server = createServer(async (req, res) => {
    const chunks = [];
    for await (const chunk of req) chunks.push(chunk);
    const body = Buffer.concat(chunks).toString("utf8");
    const url = new URL(req.url, "http://stub");
    if (url.pathname.startsWith("/__")) return control(state, url, req.method, body, res);
    if (req.headers["x-amz-target"] === "AmazonSQS.SendMessage") return sqsSendMessage(state, req, body, res);
    if (req.method !== "POST" || url.pathname !== "/v2/email/outbound-emails") return reply(res, 404, { message: "unknown path" });

    state.inFlight += 1;
    state.maxInFlight = Math.max(state.maxInFlight, state.inFlight);
    try {
      const request = JSON.parse(body);
      const id = request.EmailTags?.find((tag) => tag.Name === "message_id")?.Value ?? null;
      const script = state.scripts.get(id);
      let step = script && script.length > 0 ? script.shift() : 200;
      if (step === 200 && !takeTokens(state.bucket, recipientCount(request))) {
        state.throttled += 1;
        step = { status: 429, code: "TooManyRequestsException", message: "Maximum sending rate exceeded." };
      }
      const answer = typeof step === "object" ? step : { status: step };
      await sleep(answer.delayMs ?? state.latencyMs);
      state.requests.push({ id, at: Date.now(), authorization: req.headers.authorization ?? null, amzDate: req.headers["x-amz-date"] ?? null, request, answer: answer.status ?? step });
      if (step === "network") {
        req.socket.destroy();
        return;
      }
      if (answer.status === 200) {
        state.sent += 1;
        state.sentById.set(id, (state.sentById.get(id) ?? 0) + 1);
        return reply(res, 200, { MessageId: `stub-${state.sent}` });
      }
      const code = answer.code ?? defaultCode(answer.status);
      return reply(res, answer.status, { message: answer.message ?? `stubbed ${code}` }, { "x-amzn-ErrorType": `${code}:http://internal.amazon.com/coral/com.amazonaws.sesv2/` });
    } finally {
      state.inFlight -= 1;
    }
  });
  // Node's default keep-alive timeout is short; workerd reuses connections.
  server.keepAliveTimeout = 30_000;
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address();
  return {
    url: `http://127.0.0.1:${port}`,
    state,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections?.();
        server.close(() => resolve());
      }),
  };
}

// SQS JSON-protocol SendMessage, scripted per the message's `email_id` attribute like SES
// sends per `message_id` tag: a status, `{ status, code }` or "network"; 200 by default.
async function sqsSendMessage(state, req, body, res) {
  const request = JSON.parse(body);
  const id = request.MessageAttributes?.email_id?.StringValue ?? null;
  const script = state.scripts.get(id);
  const step = script && script.length > 0 ? script.shift() : 200;
  const answer = typeof step === "object" ? step : { status: step };
  state.requests.push({ id, service: "sqs", authorization: req.headers.authorization ?? null, request, answer: answer.status ?? step });
  if (step === "network") {
    req.socket.destroy();
    return;
  }
  if (answer.status === 200) {
    state.sent += 1;
    return reply(res, 200, { MessageId: `sqs-stub-${state.sent}`, MD5OfMessageBody: "0" });
  }
  const code = answer.code ?? (answer.status >= 500 ? "InternalError" : "InvalidParameterValue");
  return reply(res, answer.status, { __type: `com.amazonaws.sqs#${code}`, message: `stubbed ${code}` });
}

function control(state, url, method, body, res) {
  if (url.pathname === "/__script" && method === "POST") {
    for (const [id, steps] of Object.entries(JSON.parse(body))) state.scripts.set(id, [...steps]);
    return reply(res, 200, { ok: true });
  }
  if (url.pathname === "/__requests") {
    const id = url.searchParams.get("id");
    return reply(res, 200, state.requests.filter((entry) => id === null || entry.id === id));
  }
  if (url.pathname === "/__stats") {
    return reply(res, 200, { maxInFlight: state.maxInFlight, requests: state.requests.length, throttled: state.throttled });
  }
  if (url.pathname === "/__reset" && method === "POST") {
    const options = body ? JSON.parse(body) : {};
    state.scripts.clear();
    state.requests.length = 0;
    state.maxInFlight = 0;
    if (options.latencyMs !== undefined) state.latencyMs = options.latencyMs;
    return reply(res, 200, { ok: true });
  }
  return reply(res, 404, { message: "unknown control path" });
}

// SES counts every recipient against the maximum send rate.
function recipientCount(request) {
  const d = request.Destination ?? {};
  return (d.ToAddresses?.length ?? 0) + (d.CcAddresses?.length ?? 0) + (d.BccAddresses?.length ?? 0);
}

function takeTokens(bucket, count) {
  if (!bucket) return true;
  const now = Date.now();
  bucket.tokens = Math.min(bucket.size, bucket.tokens + ((now - bucket.at) / 1000) * bucket.rate);
  bucket.at = now;
  if (bucket.tokens < count) return false;
  bucket.tokens -= count;
  return true;
}

function defaultCode(status) {
  if (status === 429) return "TooManyRequestsException";
  if (status >= 500) return "InternalFailure";
  return "BadRequestException";
}

function reply(res, status, payload, headers = {}) {
  const text = JSON.stringify(payload);
  res.writeHead(status, { "Content-Type": "application/json", "Content-Length": Buffer.byteLength(text), ...headers });
  res.end(text);
}

function sleep(ms) {
  return ms > 0 ? new Promise((resolve) => setTimeout(resolve, ms)) : Promise.resolve();
}
