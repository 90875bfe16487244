import { describe, expect, it } from "vitest";
import shared from "../../schema/message-id-tag-vectors.json";
import { messageIdTagValue } from "../src/ses.js";

const SES_TAG_VALUE = /^[A-Za-z0-9_-]{1,256}$/;

describe("the message id as an SES tag value", () => {
  it.each(shared.vectors)("encodes $id as the shared vector's tag", ({ id, tag }) => {
    expect(messageIdTagValue(id)).toBe(tag);
  });

  it.each(shared.vectors)("stays inside SES's tag alphabet for $id", ({ id }) => {
    expect(messageIdTagValue(id)).toMatch(SES_TAG_VALUE);
  });
});
