// The duplicate guard on the message `id`: one Durable Object per id.
import { DurableObject } from "cloudflare:workers";

/**
 * How long an id is remembered after its message was sent: the same 24 hours as the
 * Lambda path's idempotency records (Powertools' default expiry).
 */
export const GUARD_WINDOW_MS = 24 * 60 * 60 * 1000;
/**
 * How long a claim holds the id while its send is under way. Longer than one SES call
 * (SES_TIMEOUT_MS) plus the pacing wait, so only a crashed invocation lets it lapse; a
 * redelivery after that may send again (the one duplicate this guard cannot rule out).
 */
export const GUARD_LEASE_MS = 90_000;

/**
 * A Durable Object named by the message `id`. Cloudflare runs one instance per name
 * worldwide and serialises its storage operations (input and output gates), so two
 * deliveries of one id cannot both claim it: strongly consistent, unlike Workers KV
 * (https://developers.cloudflare.com/durable-objects/api/storage-api/). SQLite-backed
 * (`new_sqlite_classes`), the class the free plan allows. The record expires with an
 * alarm `GUARD_WINDOW_MS` after the send.
 */
export class MessageIdGuard extends DurableObject {
  /**
   * Claim the id for a send of the message with `fingerprint`.
   * @returns {Promise<{ outcome: "claimed" | "sent" | "busy" | "conflict", retryInMs?: number, sentAt?: number }>}
   */
  async claim(fingerprint) {
    const now = Date.now();
    const record = await this.ctx.storage.get("record");
    if (record && record.expiresAt > now) {
      if (record.fingerprint !== fingerprint) return { outcome: "conflict", state: record.state };
      if (record.state === "sent") return { outcome: "sent", sentAt: record.sentAt };
      if (record.leaseUntil > now) return { outcome: "busy", retryInMs: record.leaseUntil - now };
    }
    // The answer need not wait for the disk: this instance serialises every claim on the
    // id and reads its own write back at once, and a lease lost with a crash only matters
    // to a redelivery racing a send (Storage API, `allowUnconfirmed`).
    await this.#store({ fingerprint, state: "sending", leaseUntil: now + GUARD_LEASE_MS, expiresAt: now + GUARD_WINDOW_MS }, { allowUnconfirmed: true });
    return { outcome: "claimed" };
  }

  /** The send went out: remember the id for the window. */
  async complete(fingerprint) {
    const now = Date.now();
    await this.#store({ fingerprint, state: "sent", sentAt: now, leaseUntil: 0, expiresAt: now + GUARD_WINDOW_MS });
  }

  /** The send did not go out (throttled, held, failed): free the id for the next try. */
  async release(fingerprint) {
    const record = await this.ctx.storage.get("record");
    if (record?.fingerprint === fingerprint && record.state === "sending") {
      await this.ctx.storage.deleteAll();
    }
  }

  async alarm() {
    const record = await this.ctx.storage.get("record");
    if (!record || record.expiresAt <= Date.now()) await this.ctx.storage.deleteAll();
    else await this.ctx.storage.setAlarm(record.expiresAt);
  }

  async #store(record, options = {}) {
    await this.ctx.storage.put("record", record, options);
    await this.ctx.storage.setAlarm(record.expiresAt, options);
  }
}

/** The guard's stub for a message id. */
export function guardFor(env, id) {
  return env.EMAIL_ID_GUARD.get(env.EMAIL_ID_GUARD.idFromName(id));
}

/** SHA-256 (hex) of the message's canonical JSON (keys sorted): what "the same message" means. */
export async function fingerprint(message) {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(canonicalJson(message)));
  return [...new Uint8Array(digest)].map((byte) => byte.toString(16).padStart(2, "0")).join("");
}

export function canonicalJson(value) {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(",")}]`;
  if (value && typeof value === "object") {
    return `{${Object.keys(value)
      .sort()
      .map((key) => `${JSON.stringify(key)}:${canonicalJson(value[key])}`)
      .join(",")}}`;
  }
  return JSON.stringify(value ?? null);
}
