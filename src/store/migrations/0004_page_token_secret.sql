-- The key page tokens are signed with (HMAC-SHA256), so a client cannot forge or edit one. One
-- per database: every replica shares it and tokens survive restarts. gen_random_uuid() draws
-- from the server's strong random source (core since PostgreSQL 13, also in PGlite); two v4
-- UUIDs give 244 random bits.
CREATE TABLE page_token_secret (
  id      boolean PRIMARY KEY DEFAULT true CHECK (id),
  secret  bytea NOT NULL
);

INSERT INTO page_token_secret (secret)
VALUES (decode(replace(gen_random_uuid()::text || gen_random_uuid()::text, '-', ''), 'hex'));
