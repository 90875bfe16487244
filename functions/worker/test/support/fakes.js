// Test doubles that live in workerd beside the Worker.

/** A queue producer that records what it was given (and can be made to fail). */
export function recordingQueue({ fail = false } = {}) {
  const sent = [];
  return {
    sent,
    async send(body, options) {
      if (fail) throw new Error("Queue send failed: stubbed outage");
      sent.push({ body: structuredClone(body), options });
    },
    async sendBatch(messages, options) {
      if (fail) throw new Error("Queue sendBatch failed: stubbed outage");
      for (const message of messages) sent.push({ body: structuredClone(message.body), options: { contentType: message.contentType, ...options } });
    },
  };
}

/** A valid contract message; `overrides` replace fields (undefined removes one). */
export function message(overrides = {}) {
  const base = { id: "order-1001-receipt", to: "ada@customer.test", subject: "Your receipt", text: "Thanks!" };
  const merged = { ...base, ...overrides };
  for (const [key, value] of Object.entries(merged)) if (value === undefined) delete merged[key];
  return merged;
}

let sequence = 0;
/** A unique message id per call, so stub scripts and records never collide. */
export function uniqueId(prefix) {
  sequence += 1;
  return `${prefix}-${Date.now().toString(36)}-${sequence}`;
}
