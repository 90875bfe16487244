// Validation of the one message contract (functions/schema/message.schema.json).
// The schema is bundled as data; @cfworker/json-schema interprets it at run time
// because Workers forbid eval/new Function, which code-generating validators need.
import { Validator } from "@cfworker/json-schema";
import schema from "../../schema/message.schema.json";

/** Rules the schema cannot express, read from its `x-limits` so both senders share one number. */
export const LIMITS = Object.freeze({
  maxRecipients: schema["x-limits"].maxRecipients,
  maxMessageBytes: schema["x-limits"].maxMessageBytes,
});

const RECIPIENT_FIELDS = ["to", "cc", "bcc"];
const validator = new Validator(schema, "2020-12", false);
const encoder = new TextEncoder();

/**
 * Check one message against the schema, the x-limits and the stack's domain.
 *
 * @param {unknown} message the parsed JSON body
 * @param {string} domain the stack's sending domain (`EMAIL_DOMAIN`)
 * @returns {{ path: string, error: string }[]} empty when the message is valid
 */
export function validateMessage(message, domain) {
  const result = validator.validate(message);
  if (!result.valid) {
    return schemaErrors(result.errors);
  }
  const errors = [];
  const recipients = countRecipients(message);
  if (recipients > LIMITS.maxRecipients) {
    errors.push({
      path: "/to",
      error: `to+cc+bcc must hold at most ${LIMITS.maxRecipients} recipients, but ${recipients} were given`,
    });
  }
  const size = jsonByteLength(message);
  if (size > LIMITS.maxMessageBytes) {
    errors.push({
      path: "",
      error: `the message must be at most ${LIMITS.maxMessageBytes} bytes as UTF-8 JSON, but it is ${size}`,
    });
  }
  if (message.from !== undefined && !isOnDomain(message.from, domain)) {
    errors.push({
      path: "/from",
      error: `\`from\` must be an address on ${domain} or one of its subdomains, but its domain is ${addressDomain(message.from)}`,
    });
  }
  return errors;
}

/** @returns {number} how many addresses to, cc and bcc hold together */
export function countRecipients(message) {
  return RECIPIENT_FIELDS.reduce((total, field) => total + asList(message[field]).length, 0);
}

/** @returns {string[]} a mailboxes field as a list (the schema allows one string or a list) */
export function asList(value) {
  if (value === undefined) return [];
  return Array.isArray(value) ? value : [value];
}

/** @returns {number} the UTF-8 size of the message serialised as compact JSON */
export function jsonByteLength(message) {
  return encoder.encode(JSON.stringify(message)).byteLength;
}

/** @returns {string} the lower-cased domain of `local@domain` or `Name <local@domain>` */
export function addressDomain(mailbox) {
  const angle = mailbox.match(/<([^<>]*)>$/);
  const address = angle ? angle[1] : mailbox;
  return address.slice(address.lastIndexOf("@") + 1).toLowerCase();
}

/** True when the mailbox is on `domain` itself or on a subdomain of it (not a look-alike suffix). */
export function isOnDomain(mailbox, domain) {
  const host = addressDomain(mailbox);
  const expected = domain.toLowerCase();
  return host === expected || host.endsWith(`.${expected}`);
}

// @cfworker/json-schema reports every failed keyword up the tree (allOf, $ref,
// properties...); the leaves say what is wrong, the wrappers only repeat it.
const WRAPPER_KEYWORDS = new Set(["properties", "allOf", "$ref", "anyOf", "oneOf", "additionalProperties", "items", "propertyNames"]);

function schemaErrors(units) {
  const leaves = units.filter((unit) => !WRAPPER_KEYWORDS.has(unit.keyword));
  const chosen = leaves.length > 0 ? leaves : units;
  const seen = new Set();
  const errors = [];
  for (const unit of chosen) {
    const path = unit.instanceLocation.replace(/^#/, "");
    const key = `${path}\u0000${unit.error}`;
    if (seen.has(key)) continue;
    seen.add(key);
    errors.push({ path, error: unit.error });
  }
  return errors;
}
