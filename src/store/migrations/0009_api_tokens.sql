-- API tokens (issue 12). Only the SHA-256 of each token's secret is stored: the bearer token is
-- shown once, when created. Revoked tokens stay listed (who revoked them, when) and never come back.
CREATE TABLE api_tokens (
  id             text PRIMARY KEY,
  name           text NOT NULL,
  role           text NOT NULL CHECK (role IN ('reader', 'writer', 'admin')),
  secret_sha256  bytea NOT NULL CHECK (length(secret_sha256) = 32),
  created_at     timestamptz NOT NULL,
  created_by     text NOT NULL,
  revoked_at     timestamptz,
  revoked_by     text NOT NULL DEFAULT ''
);

-- The audit trail's caller is now the authenticated identity; what the client declares in
-- `x-caller` is kept apart, as who the identity acted on behalf of.
ALTER TABLE segment_history ADD COLUMN on_behalf_of text NOT NULL DEFAULT '';
