// The duplicate guard on the message `id`: Durable Objects, each holding a shard of the ids.
import { DurableObject } from "cloudflare:workers";

/**
 * How long an id is remembered after its message was sent: the same 24 hours as the
 * Lambda path's idempotency records (Powertools' default expiry).
 */
export const GUARD_WINDOW_MS = 24 * 60 * 60 * 1000;
/**
 * How long a claim holds the id while its send is under way. A batch claims all its ids
 * first; the last of 100 is sent after at most 17 SES calls of its lane (10 s timeout
 * each) plus a 30 s pacing wait, so only a crashed invocation lets a lease lapse; a
 * redelivery after that may send again (the one duplicate this guard cannot rule out).
 */
export const GUARD_LEASE_MS = 5 * 60 * 1000;
/**
 * Ids are spread over this many objects by a hash of the id. One object per id would
 * create (and bill) a new object for every message; a few long-lived ones keep their
 * storage warm, and each still serves far more requests a second than SES accepts
 * (Durable Objects limits: about 1,000 requests per second per object). Changing it
 * moves ids to other shards, forgetting the last 24 hours: it is part of the contract.
 */
export const GUARD_SHARDS = 32;

/**
 * One shard of the guard. Cloudflare runs one instance per object name worldwide and
 * serialises its storage operations (input and output gates), so two deliveries of one
 * id cannot both claim it: strongly consistent, unlike Workers KV
 * (https://developers.cloudflare.com/durable-objects/api/storage-api/). SQLite-backed
 * (`new_sqlite_classes`), the class every plan allows. Records expire `GUARD_WINDOW_MS`
 * after the send; an alarm sweeps them.
 */
export class MessageIdGuard extends DurableObject {
  /**
   * Claim `id` for a send of the message with `fingerprint`.
   * @returns {Promise<{ outcome: "claimed" | "sent" | "busy" | "conflict", retryInMs?: number, sentAt?: number }>}
   */
  async claim(id, fingerprint) {
    const now = Date.now();
    const record = await this.ctx.storage.get(id);
    if (record && record.expiresAt > now) {
      if (record.fingerprint !== fingerprint) return { outcome: "conflict", state: record.state };
      if (record.state === "sent") return { outcome: "sent", sentAt: record.sentAt };
      if (record.leaseUntil > now) return { outcome: "busy", retryInMs: record.leaseUntil - now };
    }
    // The answer need not wait for the disk: this instance serialises every claim on the
    // id and reads its own write back at once, and a lease lost with a crash only matters
    // to a redelivery racing a send (Storage API, `allowUnconfirmed`).
    await this.#store(id, { fingerprint, state: "sending", leaseUntil: now + GUARD_LEASE_MS, expiresAt: now + GUARD_WINDOW_MS }, { allowUnconfirmed: true });
    return { outcome: "claimed" };
  }

  /** The send went out: remember the id for the window. */
  async complete(id, fingerprint) {
    const now = Date.now();
    await this.#store(id, { fingerprint, state: "sent", sentAt: now, leaseUntil: 0, expiresAt: now + GUARD_WINDOW_MS });
  }

  /** The send did not go out (throttled, held, failed): free the id for the next try. */
  async release(id, fingerprint) {
    const record = await this.ctx.storage.get(id);
    if (record?.fingerprint === fingerprint && record.state === "sending") await this.ctx.storage.delete(id);
  }

  /** Delete what expired; wake again for the earliest record left. */
  async alarm() {
    const now = Date.now();
    let next = null;
    let startAfter;
    for (;;) {
      const page = await this.ctx.storage.list({ startAfter, limit: 1000 });
      if (page.size === 0) break;
      const expired = [];
      for (const [key, record] of page) {
        if (record.expiresAt <= now) expired.push(key);
        else next = Math.min(next ?? record.expiresAt, record.expiresAt);
        startAfter = key;
      }
      if (expired.length > 0) await this.ctx.storage.delete(expired);
    }
    if (next !== null) await this.ctx.storage.setAlarm(next);
  }

  async #store(id, record, options = {}) {
    await this.ctx.storage.put(id, record, options);
    if ((await this.ctx.storage.getAlarm()) === null) await this.ctx.storage.setAlarm(record.expiresAt, options);
  }
}

/** The guard shard that holds `id` (FNV-1a of its UTF-8 bytes). */
export function guardFor(env, id) {
  let hash = 0x811c9dc5;
  for (const byte of new TextEncoder().encode(id)) hash = Math.imul(hash ^ byte, 0x01000193) >>> 0;
  return env.EMAIL_ID_GUARD.get(env.EMAIL_ID_GUARD.idFromName(`ids-${hash % GUARD_SHARDS}`));
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
