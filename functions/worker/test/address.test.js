// Mailboxes and headers that cannot be injected, as the Worker enforces them.
// functions/schema/address-vectors.json is shared with the Lambda sender's pytest suite
// (tests/functions/test_addresses.py): same verdict, refusal code and sent form.
import { createExecutionContext, createMessageBatch, getQueueResult, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { beforeEach, describe, expect, it } from "vitest";
import worker from "../dist/worker.js";
import vectors from "../../schema/address-vectors.json";
import { AddressError, formatMailbox, parseMailbox } from "../src/address.js";
import { sendEmailRequest } from "../src/ses.js";
import { validateMessage } from "../src/validate.js";
import { message, recordingQueue, uniqueId } from "./support/fakes.js";

const DOMAIN = vectors.domain;
const valid = vectors.mailboxes.filter((vector) => vector.valid);
const label = (vector) => `${vector.class ?? "from"}: ${JSON.stringify(vector.input).slice(0, 80)}`;
const FIELDS = ["to", "cc", "bcc", "reply_to"];

function refusal(input) {
  try {
    parseMailbox(input);
  } catch (error) {
    if (error instanceof AddressError) return error.code;
    throw error;
  }
  return null;
}

describe("the shared mailbox vectors", () => {
  it.each(vectors.mailboxes.map((vector) => [label(vector), vector]))("%s", (_label, vector) => {
    if (vector.valid) {
      expect(formatMailbox(parseMailbox(vector.input))).toBe(vector.canonical);
    } else {
      expect(refusal(vector.input)).toBe(vector.code);
    }
  });

  it.each(FIELDS)("gives every vector its verdict in `%s`, naming the item", (field) => {
    for (const vector of vectors.mailboxes) {
      const errors = validateMessage(message({ [field]: [vector.input] }), DOMAIN);
      if (vector.valid) {
        expect(errors, label(vector)).toEqual([]);
      } else {
        // The schema (single line, an @; its oneOf also reports the single-string form)
        // or the mailbox parser refuses it, naming the item.
        expect(errors.map((error) => error.path), label(vector)).toContain(`/${field}/0`);
        expect(errors.every((error) => error.path.startsWith(`/${field}`)), label(vector)).toBe(true);
      }
    }
  });

  it("sends every valid vector re-serialised in to, cc, bcc and reply_to", async () => {
    for (const vector of valid) {
      const request = await sendEmailRequest(env, message({ to: vector.input, cc: [vector.input], bcc: vector.input, reply_to: [vector.input] }));
      expect(request.Destination, label(vector)).toEqual({ ToAddresses: [vector.canonical], CcAddresses: [vector.canonical], BccAddresses: [vector.canonical] });
      expect(request.ReplyToAddresses).toEqual([vector.canonical]);
    }
  });
});

describe("the shared from vectors", () => {
  it.each(vectors.from.map((vector) => [label(vector), vector]))("%s", async (_label, vector) => {
    const errors = validateMessage(message({ from: vector.input }), DOMAIN);

    if (vector.valid) {
      expect(errors).toEqual([]);
      expect((await sendEmailRequest(env, message({ from: vector.input }))).FromEmailAddress).toBe(vector.canonical);
    } else {
      expect(errors.map((error) => [error.path, error.code])).toEqual([["/from", vector.code]]);
    }
  });
});

describe("the shared header vectors", () => {
  it.each(vectors.headers.map((vector) => [vector.name, vector]))("%s", async (name, vector) => {
    const errors = validateMessage(message({ headers: { [name]: "v" } }), DOMAIN);

    if (vector.valid) {
      expect(errors).toEqual([]);
      expect((await sendEmailRequest(env, message({ headers: { [name]: "v" } }))).Content.Simple.Headers).toEqual([{ Name: name, Value: "v" }]);
    } else {
      expect(errors).toEqual([{ path: `/headers/${name}`, error: expect.stringContaining(`the header '${name}' is not allowed`), code: "header-not-allowed" }]);
    }
  });

  it("refuses a header given twice in two cases", () => {
    const errors = validateMessage(message({ headers: { "List-Unsubscribe": "<https://a>", "list-unsubscribe": "<https://b>" } }), DOMAIN);

    expect(errors.map((error) => error.code)).toEqual(["duplicate-header"]);
  });
});

describe("recipients count once each", () => {
  const names = Array.from({ length: 50 }, (_, i) => `"Customer, No ${i}" <c${i}@customer.test>`);

  it("accepts 50 quoted names with commas and sends exactly 50", async () => {
    const body = message({ to: names.slice(0, 30), cc: names.slice(30, 40), bcc: names.slice(40) });

    expect(validateMessage(body, DOMAIN)).toEqual([]);
    const { Destination } = await sendEmailRequest(env, body);
    expect(Object.values(Destination).flat()).toHaveLength(50);
    expect(Destination.ToAddresses[0]).toBe('"Customer, No 0" <c0@customer.test>');
  });

  it("refuses the 51st", () => {
    const errors = validateMessage(message({ to: names.slice(0, 30), cc: names.slice(30, 40), bcc: [...names.slice(40), "one@more.test"] }), DOMAIN);

    expect(errors).toEqual([{ path: "/to", error: expect.stringContaining("at most 50 recipients, but 51") }]);
  });
});

describe("at the entry points", () => {
  const injections = vectors.mailboxes.filter((vector) => !vector.valid);

  it("POST /send refuses every injection vector with 400 and enqueues nothing", async () => {
    for (const vector of injections) {
      const queue = recordingQueue();
      const ctx = createExecutionContext();
      const response = await worker.fetch(
        new Request("https://mail-worker.test/send", {
          method: "POST",
          headers: { Authorization: `Bearer ${env.EMAIL_WORKER_TOKEN}`, "Content-Type": "application/json" },
          body: JSON.stringify(message({ to: ["ok@customer.test", vector.input] })),
        }),
        { ...env, EMAIL_QUEUE: queue },
        ctx,
      );
      await waitOnExecutionContext(ctx);

      expect(response.status, label(vector)).toBe(400);
      const paths = (await response.json()).details.map((detail) => detail.path);
      expect(paths, label(vector)).toContain("/to/1");
      expect(paths.every((path) => path.startsWith("/to"))).toBe(true);
      expect(queue.sent).toEqual([]);
    }
  });

  beforeEach(async () => {
    await fetch(`${env.SES_STUB_URL}/__reset`, { method: "POST", body: JSON.stringify({ latencyMs: 0 }) });
  });

  it("the queue consumer sends a quoted comma name as one recipient and dead-letters the issue's injection with its code", async () => {
    const ok = message({ id: uniqueId("quoted"), to: '"Smith, John" <john@customer.test>', from: "Acme <receipts@MAIL.example.com>" });
    const injected = message({ id: uniqueId("inject"), to: "x@evil.test, Bob <bob@customer.test>" });
    const dlq = recordingQueue();
    const batch = createMessageBatch("email-queue", [ok, injected].map((body, i) => ({ id: `qm-${i}`, timestamp: new Date(), attempts: 1, body })));
    const ctx = createExecutionContext();

    await worker.queue(batch, { ...env, EMAIL_DLQ: dlq }, ctx);
    const result = await getQueueResult(batch, ctx);

    expect(result.explicitAcks.sort()).toEqual(["qm-0", "qm-1"]);
    const [recorded] = await (await fetch(`${env.SES_STUB_URL}/__requests?id=${ok.id}`)).json();
    expect(recorded.request.Destination).toEqual({ ToAddresses: ['"Smith, John" <john@customer.test>'] });
    expect(recorded.request.FromEmailAddress).toBe("Acme <receipts@mail.example.com>");
    expect(dlq.sent.map((entry) => [entry.body.message_id, entry.body.error_class, entry.body.details.map((d) => d.code)])).toEqual([
      [injected.id, "InvalidMessage", ["display-name-address"]],
    ]);
    expect(dlq.sent[0].body.reason).toMatch(/\[display-name-address\]$/);
  });
});
