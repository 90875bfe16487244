// Validation of the one message contract (functions/schema/message.schema.json).
// The schema is bundled as data; @cfworker/json-schema interprets it at run time
// because Workers forbid eval/new Function, which code-generating validators need.
import { Validator } from "@cfworker/json-schema";
import schema from "../../schema/message.schema.json";
import { AddressError, canonicalMailbox, headerError, parseMailbox } from "./address.js";

/** Rules the schema cannot express, read from its `x-limits` so both senders share one number. */
export const LIMITS = Object.freeze({
  maxRecipients: schema["x-limits"].maxRecipients,
  maxMessageBytes: schema["x-limits"].maxMessageBytes,
});

const RECIPIENT_FIELDS = ["to", "cc", "bcc"];
const MAILBOX_FIELDS = [...RECIPIENT_FIELDS, "reply_to", "from"];
const HEADER_RULES = schema["x-headers"];
const RESERVED_TAGS = schema["x-tags"].reserved;
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
  const errors = [...mailboxErrors(message), ...headerErrors(message.headers ?? {}), ...tagErrors(message.tags ?? {})];
  // Each string is exactly one mailbox once it parses, so counting strings counts
  // recipients: a comma in a name can neither add one nor slip past the limit.
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
  if (message.from !== undefined && errors.every((e) => e.path !== "/from") && !isOnDomain(message.from, domain)) {
    errors.push({
      path: "/from",
      error: `\`from\` must be an address on ${domain} or one of its subdomains, but its domain is ${addressDomain(message.from)} [not-on-domain]`,
      code: "not-on-domain",
    });
  }
  return errors;
}

/** @returns {string[]} the re-serialised mailboxes of a checked field, as SES receives them */
export function canonicalMailboxes(value) {
  return asList(value).map(canonicalMailbox);
}

function mailboxErrors(message) {
  const errors = [];
  for (const field of MAILBOX_FIELDS) {
    const value = message[field];
    asList(value).forEach((mailbox, index) => {
      try {
        canonicalMailbox(mailbox);
      } catch (error) {
        if (!(error instanceof AddressError)) throw error;
        const [path, where] = Array.isArray(value) ? [`/${field}/${index}`, `${field}[${index}]`] : [`/${field}`, field];
        errors.push({ path, error: `\`${where}\` ${error.reason} [${error.code}]`, code: error.code });
      }
    });
  }
  return errors;
}

function headerErrors(headers) {
  const errors = [];
  const seen = new Set();
  for (const name of Object.keys(headers)) {
    const reason = headerError(name, HEADER_RULES);
    if (reason) {
      errors.push({ path: `/headers/${name}`, error: `${reason} [header-not-allowed]`, code: "header-not-allowed" });
    } else if (seen.has(name.toLowerCase())) {
      errors.push({ path: `/headers/${name}`, error: `'${name}' is given twice (header names are case-insensitive) [duplicate-header]`, code: "duplicate-header" });
    }
    seen.add(name.toLowerCase());
  }
  return errors;
}

// The senders set these tags on every message themselves (schema `x-tags`) and the message history trusts them.
function tagErrors(tags) {
  return Object.keys(tags)
    .filter((name) => RESERVED_TAGS.includes(name))
    .map((name) => ({
      path: `/tags/${name}`,
      error: `'${name}' is a reserved tag name: the sender sets ${RESERVED_TAGS.join(" and ")} on every message itself; rename the tag [reserved-tag]`,
      code: "reserved-tag",
    }));
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

/**
 * @returns {string} the domain of `local@domain` or `Name <local@domain>`: lower-case ASCII
 * (punycode) when the mailbox parses, else a best-effort cut for error messages
 */
export function addressDomain(mailbox) {
  try {
    return parseMailbox(mailbox).domain;
  } catch (error) {
    if (!(error instanceof AddressError)) throw error;
  }
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
