/** SQL of API tokens (migration 0009): rows hold a hash of each secret, never the secret. */
import type { Role } from "../model.js";
import type { Database } from "./database.js";

/** A token as stored. */
export interface StoredToken {
  id: string;
  name: string;
  role: Role;
  secretSha256: Uint8Array;
  createdAt: Date;
  createdBy: string;
  revokedAt: Date | null;
  revokedBy: string;
}

interface TokenRow {
  id: string;
  name: string;
  role: Role;
  secret_sha256: Uint8Array;
  created_at: Date;
  created_by: string;
  revoked_at: Date | null;
  revoked_by: string;
}

const COLUMNS = "id, name, role, secret_sha256, created_at, created_by, revoked_at, revoked_by";

/** Reads and writes `api_tokens`. */
export class TokenStore {
  constructor(private readonly db: Database) {}

  /** Stores a new token. */
  async insert(token: StoredToken, signal?: AbortSignal): Promise<void> {
    await this.db.transaction(async (tx) => {
      await tx.query("INSERT INTO api_tokens (id, name, role, secret_sha256, created_at, created_by) VALUES ($1, $2, $3, $4, $5, $6)", [
        token.id,
        token.name,
        token.role,
        token.secretSha256,
        token.createdAt,
        token.createdBy,
      ]);
    }, signal);
  }

  /** Every token, newest first (a small table: it is re-read on every refresh). */
  async all(): Promise<StoredToken[]> {
    const rows = await this.db.query<TokenRow>(`SELECT ${COLUMNS} FROM api_tokens ORDER BY created_at DESC, id`);
    return rows.map(fromRow);
  }

  /** Marks a token revoked (once: a revoked token keeps its first revocation); undefined for an unknown id. */
  async revoke(id: string, at: Date, by: string, signal?: AbortSignal): Promise<StoredToken | undefined> {
    return this.db.transaction(async (tx) => {
      await tx.query("UPDATE api_tokens SET revoked_at = $2, revoked_by = $3 WHERE id = $1 AND revoked_at IS NULL", [id, at, by]);
      const rows = await tx.query<TokenRow>(`SELECT ${COLUMNS} FROM api_tokens WHERE id = $1`, [id]);
      return rows[0] === undefined ? undefined : fromRow(rows[0]);
    }, signal);
  }
}

function fromRow(row: TokenRow): StoredToken {
  return {
    id: row.id,
    name: row.name,
    role: row.role,
    secretSha256: row.secret_sha256,
    createdAt: row.created_at,
    createdBy: row.created_by,
    revokedAt: row.revoked_at,
    revokedBy: row.revoked_by,
  };
}
