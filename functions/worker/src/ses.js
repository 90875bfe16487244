// SES v2 SendEmail over its REST API, signed with aws4fetch (SigV4, service `ses`).
import { sesEndpoint } from "./config.js";
import { canonicalMailbox } from "./address.js";
import { canonicalMailboxes } from "./validate.js";

export const SEND_EMAIL_PATH = "/v2/email/outbound-emails";
/** The tag that carries the message `id` into SES events (bounces, complaints, deliveries). */
export const MESSAGE_ID_TAG = "message_id";
/** The tag that carries when the message entered the queue (epoch ms) into SES events, for the history's `queued` item. */
export const QUEUED_AT_TAG = "queued_at";
/** A slow SES call is abandoned and retried; well under the consumer's wall-clock limit. */
export const SES_TIMEOUT_MS = 10_000;

// SES v2 returns these with a 4xx status, yet they clear by themselves: retry them.
// https://docs.aws.amazon.com/ses/latest/APIReference-V2/API_SendEmail.html#API_SendEmail_Errors
const TRANSIENT_CODES = new Set(["LimitExceededException", "RequestTimeout", "RequestTimeoutException"]);
// Over the maximum send rate: the message waits its turn, it is not failing.
const THROTTLE_CODES = new Set(["TooManyRequestsException", "Throttling", "ThrottlingException"]);
// SES names the exceeded quota in the message ("Throttling: Maximum sending rate exceeded.",
// "Daily message quota exceeded."): SES Developer Guide, "Errors related to sending quotas".
const DAILY_QUOTA = /daily message quota exceeded|sending quota exceeded/i;
const SEND_RATE = /maximum sending rate exceeded/i;
const PLAIN_TAG_VALUE = /^[A-Za-z0-9-][A-Za-z0-9_-]{0,255}$/;

/**
 * The outcome of one send, never thrown: `sent`, `throttled` (over the send rate: wait,
 * not a failure), `quota` (the daily quota is spent: hold until it frees up),
 * `transient` (retry later) or `permanent` (retrying cannot help: the message goes to
 * the DLQ with the reason).
 *
 * @typedef {{ kind: "sent", sesMessageId: string }
 *   | { kind: "throttled" | "quota" | "transient" | "permanent", errorClass: string, reason: string, status: number | null }} SendOutcome
 */

/** @returns {Promise<SendOutcome>} */
export async function sendEmail(client, env, message, queuedAt) {
  const url = `${sesEndpoint(env)}${SEND_EMAIL_PATH}`;
  const body = JSON.stringify(await sendEmailRequest(env, message, queuedAt));
  let response;
  try {
    response = await client.fetch(url, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body,
      signal: AbortSignal.timeout(SES_TIMEOUT_MS),
    });
  } catch (error) {
    // No answer: the mail may or may not have left. Retrying risks a duplicate, dropping
    // risks a loss; at-least-once is the documented contract.
    return { kind: "transient", errorClass: error?.name ?? "NetworkError", reason: `network error: ${error?.message ?? error}`, status: null };
  }
  const text = await response.text();
  if (response.ok) {
    return { kind: "sent", sesMessageId: parseJson(text)?.MessageId ?? "" };
  }
  return classifyError(response.status, response.headers, text);
}

/**
 * The SES v2 SendEmail body for one contract message.
 * SES v2 SendEmail has no idempotency token, so the message `id` travels as an EmailTag
 * (traceable in SES events) and the consumer's one-by-one ack is the duplicate guard.
 * `queuedAt` (epoch ms), when the message entered the queue, travels as a tag too.
 */
export async function sendEmailRequest(env, message, queuedAt) {
  // Re-serialised, never the producer's text: validateMessage proved each is one mailbox.
  const destination = { ToAddresses: canonicalMailboxes(message.to) };
  if (message.cc !== undefined) destination.CcAddresses = canonicalMailboxes(message.cc);
  if (message.bcc !== undefined) destination.BccAddresses = canonicalMailboxes(message.bcc);

  const simpleBody = {};
  if (message.text !== undefined) simpleBody.Text = { Data: message.text, Charset: "UTF-8" };
  if (message.html !== undefined) simpleBody.Html = { Data: message.html, Charset: "UTF-8" };
  const simple = { Subject: { Data: message.subject, Charset: "UTF-8" }, Body: simpleBody };
  if (message.headers !== undefined) {
    simple.Headers = Object.entries(message.headers).map(([Name, Value]) => ({ Name, Value }));
  }

  // validateMessage refused the reserved names in `tags`, so these are added once.
  const tags = Object.entries(message.tags ?? {}).map(([Name, Value]) => ({ Name, Value }));
  tags.push({ Name: MESSAGE_ID_TAG, Value: messageIdTagValue(message.id) });
  if (queuedAt !== undefined) tags.push({ Name: QUEUED_AT_TAG, Value: String(queuedAt) });

  const request = {
    FromEmailAddress: canonicalMailbox(message.from ?? env.EMAIL_DEFAULT_FROM),
    Destination: destination,
    Content: { Simple: simple },
    EmailTags: tags,
    ConfigurationSetName: env.EMAIL_CONFIGURATION_SET,
  };
  if (message.reply_to !== undefined) request.ReplyToAddresses = canonicalMailboxes(message.reply_to);
  return request;
}

/**
 * The message `id` as an SES tag value, reversibly. SES v2 tag values allow only ASCII
 * letters, digits, `_` and `-` (at most 256; SES API Reference v2, MessageTag); the
 * contract's `id` is any printable ASCII. An id of that alphabet not starting with `_` is
 * its own tag value; any other is `_` + the unpadded base64url of its UTF-8 bytes (RFC 4648
 * section 5, whose alphabet is SES's). Same rule as functions/events/message_tag.py, pinned
 * by functions/schema/message-id-tag-vectors.json.
 */
export function messageIdTagValue(id) {
  if (PLAIN_TAG_VALUE.test(id)) return id;
  let binary = "";
  for (const byte of new TextEncoder().encode(id)) binary += String.fromCharCode(byte);
  return `_${btoa(binary).replaceAll("+", "-").replaceAll("/", "_").replace(/=+$/, "")}`;
}

/**
 * Quota: the daily sending quota is exceeded. Throttled: 429, the throttling codes, or
 * the maximum send rate named in the message. Transient: 5xx, 408 and the other
 * retryable codes. Permanent: every other 4xx
 * (MessageRejected, MailFromDomainNotVerifiedException, BadRequestException,
 * NotFoundException, AccountSuspendedException, SendingPausedException, AccessDenied...):
 * SES will give the same answer next time, so the message goes to the DLQ with the reason
 * and can be redriven once the cause is fixed.
 *
 * @returns {SendOutcome}
 */
export function classifyError(status, headers, text) {
  const { code, message } = parseSesError(headers, text);
  const errorClass = code || `HTTP${status}`;
  const reason = `SES ${status} ${errorClass}${message ? `: ${message}` : ""}`.slice(0, 1000);
  let kind = "permanent";
  if (DAILY_QUOTA.test(message)) kind = "quota";
  else if (status === 429 || THROTTLE_CODES.has(code) || SEND_RATE.test(message)) kind = "throttled";
  else if (status === 408 || status >= 500 || TRANSIENT_CODES.has(code)) kind = "transient";
  return { kind, errorClass, reason, status };
}

// REST-JSON errors name their type in `x-amzn-ErrorType` ("Code:uri") or `__type`
// ("ns#Code"); some front ends answer in XML (<Code>, <Message>).
function parseSesError(headers, text) {
  const json = parseJson(text);
  const raw =
    headers.get("x-amzn-ErrorType") ??
    json?.__type ??
    json?.code ??
    json?.Code ??
    json?.Error?.Code ??
    text.match(/<Code>([^<]*)<\/Code>/)?.[1] ??
    "";
  const code = raw.split(":")[0].split("#").pop().trim();
  const message = json?.message ?? json?.Message ?? json?.Error?.Message ?? text.match(/<Message>([^<]*)<\/Message>/)?.[1] ?? "";
  return { code, message: String(message) };
}

function parseJson(text) {
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
}
