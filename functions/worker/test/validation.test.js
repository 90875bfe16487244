import { describe, expect, it } from "vitest";
import examples from "../../schema/examples.json";
import schema from "../../schema/message.schema.json";
import { LIMITS, isOnDomain, validateMessage } from "../src/validate.js";

describe("the shared message vectors", () => {
  it.each(examples.cases.map((example) => [example.name, example]))("%s", (_name, example) => {
    const errors = validateMessage(example.message, examples.domain);

    if (example.valid) {
      expect(errors).toEqual([]);
    } else {
      expect(errors.length).toBeGreaterThan(0);
      for (const error of errors) expect(error.error).toEqual(expect.any(String));
      if (example.code) expect(errors.map((error) => error.code)).toEqual([example.code]);
    }
  });
});

describe("limits and domain", () => {
  it("reads its limits from the schema's x-limits", () => {
    expect(LIMITS.maxRecipients).toBe(schema["x-limits"].maxRecipients);
    expect(LIMITS.maxMessageBytes).toBe(schema["x-limits"].maxMessageBytes);
  });

  it.each([
    ["x@mail.example.com", true],
    ["Acme <x@MAIL.example.com>", true],
    ["x@eu.mail.example.com", true],
    ["x@notmail.example.com", false],
    ["x@mail.example.com.evil.test", false],
    ["x@example.com", false],
  ])("from %s on mail.example.com: %s", (from, expected) => {
    expect(isOnDomain(from, "mail.example.com")).toBe(expected);
  });

  it("names the recipient limit and the count in its error", () => {
    const to = Array.from({ length: 30 }, (_, i) => `u${i}@customer.test`);
    const errors = validateMessage({ id: "a", to, cc: to.slice(0, 21), subject: "s", text: "t" }, "mail.example.com");

    expect(errors).toEqual([{ path: "/to", error: expect.stringContaining("at most 50 recipients, but 51") }]);
  });
});
