/** The per-database key page tokens are signed with (created by migration 0004). */
import type { Queryable } from "./database.js";

/** Reads the page-token key; fails when the migration that creates it has not run. */
export async function loadPageTokenSecret(db: Queryable): Promise<Uint8Array> {
  const rows = await db.query<{ secret: Uint8Array }>("SELECT secret FROM page_token_secret WHERE id");
  const secret = rows[0]?.secret;
  if (secret === undefined || secret.byteLength < 16) throw new Error("page_token_secret holds no key; run the migrations");
  return secret;
}
