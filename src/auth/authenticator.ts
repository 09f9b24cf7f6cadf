/**
 * Who is calling: turns a call's `authorization` metadata into an identity, and refuses the call
 * when the identity's role is below what the method needs (roles.ts).
 *
 * Authentication is on once any token exists (configured as ADMIN_TOKEN, found in the store at
 * start, created since, or seen by a refresh) and then stays on until the process stops: revoking
 * the last token must not open the service. Tokens live in memory by id, re-read from the store
 * every `refreshMs` so a revocation on another replica takes effect here within that time; one
 * made through this process applies at once. If a refresh fails, the last known set is kept.
 */
import type { Logger } from "pino";
import { PermissionDeniedError, UnauthenticatedError } from "../errors.js";
import type { Role } from "../model.js";
import type { StoredToken } from "../store/token-store.js";
import { allows, requiredRole } from "./roles.js";
import { bearerToken, equalInConstantTime, hashSecret, parseToken, secretMatches } from "./tokens.js";

/** Who a call runs as. */
export interface Identity {
  readonly role: Role;
  /** The token's id; empty for ADMIN_TOKEN and while authentication is off. */
  readonly tokenId: string;
  /** The token's name. */
  readonly name: string;
  /** False only while authentication is off. */
  readonly authenticated: boolean;
  /** What the audit trail records as the caller. */
  readonly auditName: string;
}

/** Every caller while authentication is off: the service is then reachable from loopback only. */
export const UNAUTHENTICATED: Identity = {
  role: "admin",
  tokenId: "",
  name: "unauthenticated",
  authenticated: false,
  auditName: "unauthenticated",
};

const BOOTSTRAP: Identity = { role: "admin", tokenId: "", name: "ADMIN_TOKEN", authenticated: true, auditName: "ADMIN_TOKEN" };

/** Where tokens are read from. */
export interface TokenSource {
  all(): Promise<StoredToken[]>;
}

/** How the authenticator is set up. */
export interface AuthenticatorDeps {
  tokens: TokenSource;
  log: Logger;
  /** The configured admin token (ADMIN_TOKEN / ADMIN_TOKEN_FILE), if any: kept as its hash only. */
  bootstrapToken?: string | undefined;
  /** How often tokens are re-read from the store. */
  refreshMs: number;
}

interface KnownToken {
  identity: Identity;
  hash: Uint8Array;
  /**
   * The secret once it has hashed to `hash`: later calls compare against it in constant time
   * instead of hashing again (SHA-256 was ~3 µs of a ~80 µs CheckMembership). A secret that
   * differs is still hashed, so a mismatch here only tells what the call's failure would.
   */
  verified?: string;
}

/** Identities from bearer tokens, and the role check of every call. */
export class Authenticator {
  private known = new Map<string, KnownToken>();
  private readonly bootstrap: KnownToken | undefined;
  private on: boolean;
  private timer: NodeJS.Timeout | undefined;
  private failing = false;
  private refreshing = false;

  constructor(private readonly deps: AuthenticatorDeps) {
    this.bootstrap = deps.bootstrapToken === undefined ? undefined : { identity: BOOTSTRAP, hash: hashSecret(deps.bootstrapToken) };
    this.on = this.bootstrap !== undefined;
  }

  /** Whether calls need a token (sticky: once on, on until the process stops). */
  get required(): boolean {
    return this.on;
  }

  /** Reads every token from the store; rejects when it cannot (start-up must not guess). */
  async load(): Promise<void> {
    this.replace(await this.deps.tokens.all());
  }

  /** Re-reads the tokens every `refreshMs` until stop(). */
  start(): void {
    this.timer = setInterval(() => void this.refresh(), this.deps.refreshMs);
    this.timer.unref();
  }

  /** Stops refreshing. */
  stop(): void {
    clearInterval(this.timer);
  }

  /** Takes in a token this process just created or revoked, without waiting for a refresh. */
  update(token: StoredToken): void {
    if (token.revokedAt !== null) {
      this.known.delete(token.id);
      return;
    }
    this.known.set(token.id, known(token));
    this.on = true;
  }

  /**
   * The check for `method` ("package.Service/Method"), built once per method: given the call's
   * `authorization` metadata value, its identity, or it throws UNAUTHENTICATED / PERMISSION_DENIED.
   */
  guard(method: string): (authorization: unknown) => Identity {
    const needed = requiredRole(method);
    const name = method.slice(method.lastIndexOf("/") + 1);
    return (authorization) => {
      if (!this.on) return UNAUTHENTICATED;
      const identity = this.authenticate(authorization);
      if (!allows(identity.role, needed)) {
        const who = identity.tokenId === "" ? identity.name : `token ${identity.tokenId} (${JSON.stringify(identity.name)})`;
        throw new PermissionDeniedError(needed, `${name} needs the ${needed} role; ${who} has ${identity.role}`);
      }
      return identity;
    };
  }

  private authenticate(authorization: unknown): Identity {
    const bearer = bearerToken(authorization);
    if (bearer === undefined) {
      throw new UnauthenticatedError("this call needs an API token: send `authorization: Bearer <token>` metadata");
    }
    const parsed = parseToken(bearer);
    if (parsed !== undefined) {
      const token = this.known.get(parsed.id);
      if (token !== undefined && verifies(token, parsed.secret)) return token.identity;
    } else if (this.bootstrap !== undefined && verifies(this.bootstrap, bearer)) {
      return BOOTSTRAP;
    }
    throw new UnauthenticatedError("the API token is not valid: unknown, revoked or malformed");
  }

  private async refresh(): Promise<void> {
    // One at a time: on a busy PGlite a read can wait DB_LOCK_TIMEOUT_MS, and timer ticks must
    // not queue more reads behind it.
    if (this.refreshing) return;
    this.refreshing = true;
    try {
      this.replace(await this.deps.tokens.all());
      if (this.failing) this.deps.log.info("API tokens re-read from the store again");
      this.failing = false;
    } catch (error: unknown) {
      if (!this.failing) this.deps.log.warn({ err: error }, "cannot re-read API tokens; keeping the last known set");
      this.failing = true;
    } finally {
      this.refreshing = false;
    }
  }

  private replace(tokens: StoredToken[]): void {
    const next = new Map<string, KnownToken>();
    for (const token of tokens) if (token.revokedAt === null) next.set(token.id, known(token));
    this.known = next;
    if (next.size > 0) this.on = true;
  }
}

function verifies(token: KnownToken, secret: string): boolean {
  if (token.verified !== undefined && equalInConstantTime(secret, token.verified)) return true;
  if (!secretMatches(secret, token.hash)) return false;
  token.verified = secret;
  return true;
}

function known(token: StoredToken): KnownToken {
  return {
    hash: token.secretSha256,
    identity: {
      role: token.role,
      tokenId: token.id,
      name: token.name,
      authenticated: true,
      auditName: `${token.name} (token ${token.id})`,
    },
  };
}
