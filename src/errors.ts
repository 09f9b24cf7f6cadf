/**
 * Domain errors. Every layer throws these; only src/grpc turns them into gRPC statuses, so the
 * mapping from situation to status code (DESIGN.md "Errors") lives in exactly one place.
 */

/** Base class: a failure the caller caused or can act on, with a message that says what to fix. */
export abstract class DomainError extends Error {
  /** Stable machine-readable reason, sent as google.rpc.ErrorInfo.reason. */
  abstract readonly reason: string;
}

/** A request field is malformed or over a limit. */
export class InvalidArgumentError extends DomainError {
  readonly reason = "INVALID_ARGUMENT";
  constructor(
    readonly field: string,
    /** What is wrong, without the field name (the message is "field: description"). */
    readonly description: string,
  ) {
    super(`${field}: ${description}`);
  }
}

/** The named resource does not exist. */
export class NotFoundError extends DomainError {
  readonly reason = "NOT_FOUND";
  constructor(
    readonly resourceType: string,
    readonly resourceName: string,
  ) {
    super(`${resourceType} ${JSON.stringify(resourceName)} not found`);
  }
}

/** A unique name is already taken. */
export class AlreadyExistsError extends DomainError {
  readonly reason = "ALREADY_EXISTS";
  constructor(
    readonly resourceType: string,
    readonly resourceName: string,
    description: string,
  ) {
    super(description);
  }
}

/** The operation is not allowed in the resource's current state (status or type). */
export class FailedPreconditionError extends DomainError {
  readonly reason = "FAILED_PRECONDITION";
  constructor(
    /** What the precondition is about, e.g. "status" or "type". */
    readonly subject: string,
    description: string,
  ) {
    super(description);
  }
}

/** A size or count limit was exceeded (message size, member cap, query row cap). */
export class ResourceExhaustedError extends DomainError {
  readonly reason = "RESOURCE_EXHAUSTED";
  constructor(
    readonly limit: string,
    description: string,
  ) {
    super(description);
  }
}

/** A dependency (the database) cannot be reached or did not answer in time; the write was not applied. */
export class UnavailableError extends DomainError {
  readonly reason = "UNAVAILABLE";
  constructor(
    description: string,
    options?: { cause?: unknown },
    /** How long the caller should wait before retrying (sent as google.rpc.RetryInfo). */
    readonly retryAfterMs = 1_000,
  ) {
    super(description, options);
  }
}

/** The call's deadline (the client's, or a server limit such as the longest stream) passed first; nothing was applied. */
export class DeadlineExceededError extends DomainError {
  readonly reason = "DEADLINE_EXCEEDED";
  constructor(
    /** Which deadline: "deadline" for the client's own, else the server setting's name. */
    readonly limit: string,
    description: string,
  ) {
    super(description);
  }
}

/** The caller went away (cancelled the call) before the change committed; nothing was applied. */
export class CancelledError extends DomainError {
  readonly reason = "CANCELLED";
}

/** The call carries no valid credentials: no token, an unknown one, or a revoked one. */
export class UnauthenticatedError extends DomainError {
  readonly reason = "UNAUTHENTICATED";
}

/** The caller is known but its role does not allow the method. */
export class PermissionDeniedError extends DomainError {
  readonly reason = "PERMISSION_DENIED";
  constructor(
    /** The role the method needs. */
    readonly needed: string,
    description: string,
  ) {
    super(description);
  }
}

/**
 * The process cannot start (port taken, store unreachable, data directory locked or read-only).
 * Not a DomainError: it never reaches a caller; main prints it with its cause chain and exits 1.
 */
export class StartupError extends Error {}
