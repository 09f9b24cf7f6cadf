/** Token management: create (the bearer token is returned once), list, revoke. */
import { InvalidArgumentError, NotFoundError } from "../errors.js";
import type { Role } from "../model.js";
import type { StoredToken, TokenStore } from "../store/token-store.js";
import type { Authenticator, Identity } from "./authenticator.js";
import { generateToken, hashSecret, isTokenId } from "./tokens.js";

const MAX_NAME_LENGTH = 128;

/** What TokenService needs. */
export interface TokenServiceDeps {
  store: TokenStore;
  authenticator: Authenticator;
  clock: () => Date;
}

/** Creates, lists and revokes API tokens. */
export class TokenService {
  constructor(private readonly deps: TokenServiceDeps) {}

  /** A new token with `role`; the bearer string exists only in this return value. */
  async create(name: string, role: Role, by: Identity, signal?: AbortSignal): Promise<{ token: StoredToken; bearer: string }> {
    const trimmed = name.trim();
    if (trimmed === "" || trimmed.length > MAX_NAME_LENGTH) {
      throw new InvalidArgumentError("name", `must be 1–${MAX_NAME_LENGTH} characters; got ${trimmed.length}`);
    }
    const fresh = generateToken();
    const token: StoredToken = {
      id: fresh.id,
      name: trimmed,
      role,
      secretSha256: hashSecret(fresh.secret),
      createdAt: this.deps.clock(),
      createdBy: by.auditName,
      revokedAt: null,
      revokedBy: "",
    };
    await this.deps.store.insert(token, signal);
    this.deps.authenticator.update(token);
    return { token, bearer: fresh.bearer };
  }

  /** Every token, newest first; revoked ones only when asked. */
  async list(includeRevoked: boolean): Promise<StoredToken[]> {
    const tokens = await this.deps.store.all();
    return includeRevoked ? tokens : tokens.filter((t) => t.revokedAt === null);
  }

  /** Revokes token `id` (idempotent); NOT_FOUND when there is none. */
  async revoke(id: string, by: Identity, signal?: AbortSignal): Promise<StoredToken> {
    if (!isTokenId(id)) throw new InvalidArgumentError("id", "must be a token id: the 12 letters and digits after `sgt_`");
    const token = await this.deps.store.revoke(id, this.deps.clock(), by.auditName, signal);
    if (token === undefined) throw new NotFoundError("api token", id);
    this.deps.authenticator.update(token);
    return token;
  }
}
