// Mailboxes and headers that cannot be injected: parse, check, re-serialise.
//
// Every mailbox string must be exactly one RFC 5322 mailbox in the strict subset the
// schema's `x-mailbox` describes; SES receives the re-serialised form, never the
// producer's text, so a comma or a quote in a display name can never add a recipient.
// Same rules as functions/lambda_sender/address.py, held to the same vectors
// (functions/schema/address-vectors.json): same verdict, refusal code and output.
//
// SES v2 wants 7-bit addresses: an ASCII local part, a non-ASCII domain "encoded using
// Punycode" and a non-ASCII display name in "MIME encoded-word syntax, as described in
// RFC 2047" (SES v2 API reference, SendEmail, FromEmailAddress and Destination).
import { decode as punycodeDecode } from "punycode/punycode.es6.js";

/** A refused mailbox or header; `code` is shared with the Lambda sender. */
export class AddressError extends Error {
  constructor(code, reason) {
    super(reason);
    this.code = code;
    this.reason = reason;
  }
}

// Letters, marks, numbers, punctuation, symbols and the ASCII space; everything else
// (controls, bidi and zero-width format characters, U+2028, NO-BREAK SPACE, private
// use, unassigned, lone surrogates) is refused anywhere in a mailbox.
const FORBIDDEN = /[^\p{L}\p{M}\p{N}\p{P}\p{S} ]/u;
// RFC 5322 specials only a quoted-string may carry in a name ('.' is obs-phrase).
const UNQUOTED_SPECIALS = '()<>[]:;@\\,"';
const DOT_ATOM = /^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*$/;
const ENCODED_WORD = /=\?[^?]*\?[bq]\?[^?]*\?=/i;
const LDH_LABEL = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;
const DOMAIN_ASCII = /^[A-Za-z0-9.-]$/;
// UTS 46 keeps these deviation characters, IDNA2003 (the Lambda's codec) maps them
// away: the two would send different domains, so both refuse them.
const DEVIATIONS = new Set(["\u00df", "\u03c2"]);
const LABEL_CHAR = /^[\p{L}\p{M}\p{N}]$/u;
// Letters of the right-to-left scripts: the Lambda's codec enforces RFC 3454's bidi
// rule (section 6) and the URL parser does not, so both apply it themselves.
const RTL_LETTER = /^(?=\p{L})[\p{Script=Hebrew}\p{Script=Arabic}\p{Script=Syriac}\p{Script=Thaana}\p{Script=Nko}\p{Script=Samaritan}\p{Script=Mandaic}\p{Script=Adlam}\p{Script=Hanifi_Rohingya}]$/u;
const MAX_LOCAL = 64;
const MAX_DOMAIN = 253;
// RFC 2047 section 2: an encoded-word is at most 75 characters; 45 bytes of UTF-8 are
// 60 of base64, plus 12 for "=?UTF-8?B?" and "?=".
const ENCODED_WORD_BYTES = 45;
const encoder = new TextEncoder();

/**
 * One parsed mailbox: `name` ("" when none), `local`, `domain` (ASCII, lower-case).
 * @typedef {{ name: string, local: string, domain: string }} Mailbox
 */

/** @returns {Mailbox} or throws AddressError */
export function parseMailbox(text) {
  const forbidden = text.match(FORBIDDEN);
  if (forbidden) {
    const hex = forbidden[0].codePointAt(0).toString(16).toUpperCase().padStart(4, "0");
    throw new AddressError("forbidden-character", `holds the character U+${hex}: controls, bidi and zero-width characters and non-ASCII spaces are not allowed`);
  }
  const trimmed = trimSpaces(text);
  let namePart = null;
  let addr = trimmed;
  if (trimmed.endsWith(">")) {
    const start = trimmed.lastIndexOf("<");
    if (start < 0) throw new AddressError("syntax", "has a '>' without a '<'");
    namePart = trimSpaces(trimmed.slice(0, start));
    addr = trimmed.slice(start + 1, -1);
  }
  if (addr.includes("<") || addr.includes(">")) {
    throw new AddressError("syntax", "must be one mailbox, 'address' or 'Name <address>', with nothing after the '>'");
  }
  const name = namePart ? parseDisplayName(namePart) : "";
  const [local, domain] = parseAddrSpec(trimSpaces(addr));
  return { name, local, domain };
}

/** @returns {string} the mailbox as SES receives it */
export function formatMailbox({ name, local, domain }) {
  const address = `${local}@${domain}`;
  if (!name) return address;
  if (/^[\x00-\x7f]*$/.test(name)) {
    // Python's email.utils.formataddr: quote when a special is present, escape \ and ".
    return /[\][\\()<>@,:;".]/.test(name) ? `"${name.replace(/[\\"]/g, "\\$&")}" <${address}>` : `${name} <${address}>`;
  }
  return `${encodeWords(name)} <${address}>`;
}

/** @returns {string} the re-serialised mailbox; throws AddressError */
export function canonicalMailbox(text) {
  return formatMailbox(parseMailbox(text));
}

function trimSpaces(text) {
  return text.replace(/^ +| +$/g, "");
}

function parseDisplayName(part) {
  const quoted = part.startsWith('"');
  const name = quoted ? unquote(part) : part;
  if (ENCODED_WORD.test(name)) {
    throw new AddressError("encoded-word", "has an RFC 2047 encoded-word in its display name: send the name as plain Unicode, the sender encodes it");
  }
  if (name.normalize("NFKC").includes("@")) {
    throw new AddressError("display-name-address", "has a display name that contains an address ('@'): a name must not look like a sender or a recipient");
  }
  if (!quoted) {
    const specials = [...new Set(name)].filter((char) => UNQUOTED_SPECIALS.includes(char)).sort();
    if (specials.length > 0) {
      throw new AddressError("syntax", `has ${specials.join(" ")} in an unquoted display name: quote the name ("Smith, John" <john@example.com>)`);
    }
  }
  // Runs of spaces in a phrase mean one space (RFC 5322 folding white space).
  return name.split(" ").filter(Boolean).join(" ");
}

function unquote(part) {
  let out = "";
  for (let i = 1; i < part.length; i++) {
    const char = part[i];
    if (char === "\\") {
      if (i + 1 >= part.length) break;
      out += part[++i];
    } else if (char === '"') {
      if (i !== part.length - 1) {
        throw new AddressError("syntax", "has text after the closing quote of its display name: quote the whole name");
      }
      return out;
    } else {
      out += char;
    }
  }
  throw new AddressError("syntax", "has a display name whose opening quote is never closed");
}

function parseAddrSpec(addr) {
  const ats = addr.split("@").length - 1;
  if (ats !== 1) throw new AddressError("syntax", `must hold exactly one '@' in its address, but has ${ats}`);
  const [local, domain] = addr.split("@");
  if (!/^[\x00-\x7f]*$/.test(local)) {
    throw new AddressError("local-part", "has a non-ASCII local part, which SES cannot send to (7-bit only)");
  }
  if (!DOT_ATOM.test(local)) {
    throw new AddressError("syntax", "has a local part that is not a dot-atom (letters, digits, !#$%&'*+/=?^_`{|}~- and single inner dots; no quotes, spaces or comments)");
  }
  if (local.length > MAX_LOCAL) {
    throw new AddressError("local-part", `has a local part of ${local.length} characters, over ${MAX_LOCAL}`);
  }
  return [local, asciiDomain(domain)];
}

function asciiDomain(domain) {
  for (const char of domain) {
    if (char.codePointAt(0) < 0x80 && !DOMAIN_ASCII.test(char)) {
      throw new AddressError("domain", `has a domain ${JSON.stringify(domain)} with characters a host name cannot hold (no spaces, comments, brackets, '_' or punctuation)`);
    }
  }
  const labels = domain.toLowerCase().split(".");
  if (labels.length < 2 || labels.includes("")) {
    throw new AddressError("domain", `has a domain ${JSON.stringify(domain)} that is not a dotted host name such as example.com`);
  }
  const result = labels.map((label) => asciiLabel(label, domain)).join(".");
  if (result.length > MAX_DOMAIN) throw new AddressError("domain", `has a domain of ${result.length} characters, over ${MAX_DOMAIN}`);
  return result;
}

function asciiLabel(label, domain) {
  if (/^[\x00-\x7f]*$/.test(label)) {
    if (label.startsWith("xn--")) {
      // An already-encoded label must decode to one the rules below accept and encode back to itself.
      let unicode;
      try {
        unicode = punycodeDecode(label.slice(4));
      } catch {
        unicode = label;
      }
      if (unicode === label || unicode === "" || encodeLabel(unicode, domain) !== label) {
        throw new AddressError("domain", `has a domain ${JSON.stringify(domain)} with an invalid punycode label`);
      }
    } else if (!LDH_LABEL.test(label)) {
      throw new AddressError("domain", `has a domain ${JSON.stringify(domain)} with the label ${JSON.stringify(label)}: 1 to 63 letters, digits or inner '-'`);
    }
    return label;
  }
  return encodeLabel(label, domain);
}

function encodeLabel(label, domain) {
  const chars = [...label];
  for (const char of chars) {
    if (char.codePointAt(0) >= 0x80 && (DEVIATIONS.has(char) || !LABEL_CHAR.test(char))) {
      const hex = char.codePointAt(0).toString(16).toUpperCase().padStart(4, "0");
      throw new AddressError("domain", `has a domain ${JSON.stringify(domain)} with U+${hex}, which an internationalised label may not hold (letters, marks and digits only; no ß or ς)`);
    }
  }
  if (label.normalize("NFKC") !== label) {
    throw new AddressError("domain", `has a domain ${JSON.stringify(domain)} with full-width or compatibility characters; write the domain in its normal form`);
  }
  if (chars.some((char) => RTL_LETTER.test(char))) {
    const ltr = chars.some((char) => /\p{L}/u.test(char) && !RTL_LETTER.test(char));
    if (ltr || !RTL_LETTER.test(chars[0]) || !RTL_LETTER.test(chars[chars.length - 1])) {
      throw new AddressError("domain", `has a domain ${JSON.stringify(domain)} that is not a valid internationalised name: a right-to-left label must start and end with a right-to-left letter and hold no left-to-right one`);
    }
  }
  let encoded;
  try {
    // The URL parser is the runtime's IDNA (UTS 46) implementation: no library needed.
    encoded = new URL(`http://${label}.invalid/`).hostname.split(".")[0];
  } catch {
    throw new AddressError("domain", `has a domain ${JSON.stringify(domain)} that is not a valid internationalised name`);
  }
  if (!LDH_LABEL.test(encoded)) throw new AddressError("domain", `has a domain ${JSON.stringify(domain)} with an invalid label`);
  return encoded;
}

function encodeWords(name) {
  const words = [];
  let chunk = [];
  let size = 0;
  for (const char of name) {
    const bytes = encoder.encode(char);
    if (size + bytes.length > ENCODED_WORD_BYTES) {
      words.push(chunk);
      chunk = [];
      size = 0;
    }
    chunk.push(...bytes);
    size += bytes.length;
  }
  words.push(chunk);
  return words.map((bytes) => `=?UTF-8?B?${btoa(String.fromCharCode(...bytes))}?=`).join(" ");
}

/**
 * Why the schema's `x-headers` allow-list refuses a custom header name, or null.
 * Header names are case-insensitive (RFC 5322 section 1.2.2).
 */
export function headerError(name, rules) {
  const key = name.toLowerCase();
  if (rules.allowed.some((allowed) => allowed.toLowerCase() === key)) return null;
  const prefixed = rules.allowedPrefixes.some((prefix) => key.startsWith(prefix.toLowerCase()) && key.length > prefix.length);
  if (prefixed && !rules.refusedPrefixes.some((prefix) => key.startsWith(prefix.toLowerCase()))) return null;
  return (
    `the header '${name}' is not allowed: custom headers are ${rules.allowed.join(", ")}, ` +
    `${rules.allowedPrefixes.map((p) => `${p}*`).join(", ")} (except ${rules.refusedPrefixes.map((p) => `${p}*`).join(", ")}); ` +
    "the sender sets From, To, Reply-To and the rest itself"
  );
}
