-- The directory moves from a row per user to a row per batch of users (src/store/user-store.ts).
-- A row per user meant a unique text index on the write path of every new user (~70% of the cost
-- of writing them); uniqueness is now kept by the service, which assigns uids under an advisory
-- lock after reading every chunk committed before it.
--
-- A chunk holds `id_count` consecutive uids from `first_uid`: `ids` is their ids concatenated in
-- uid order, and `lengths` each one's length in bytes as a little-endian uint16, 0 for a uid
-- never assigned (the old identity column could skip values). Text, not bytea, for the ids: a
-- bytea travels as hex, twice the bytes, and decoding that hex was ~45% of loading the directory.
-- STORAGE EXTERNAL: written and read whole; compressing would cost more time than it saves.
CREATE TABLE user_chunks (
  first_uid  bigint PRIMARY KEY,
  id_count   integer NOT NULL CHECK (id_count > 0),
  lengths    bytea NOT NULL CHECK (octet_length(lengths) = 2 * id_count),
  ids        text COLLATE "C" NOT NULL
);
ALTER TABLE user_chunks ALTER COLUMN lengths SET STORAGE EXTERNAL, ALTER COLUMN ids SET STORAGE EXTERNAL;

-- Existing users, 65,536 uids per chunk, gaps kept as zero lengths.
INSERT INTO user_chunks (first_uid, id_count, lengths, ids)
SELECT s.uid / 65536 * 65536,
       max(s.uid) - s.uid / 65536 * 65536 + 1,
       string_agg(
         set_byte(set_byte('\x0000'::bytea, 0, coalesce(octet_length(u.external_id), 0) % 256), 1, coalesce(octet_length(u.external_id), 0) / 256),
         ''::bytea ORDER BY s.uid),
       coalesce(string_agg(u.external_id, '' ORDER BY s.uid), '')
FROM generate_series(0, (SELECT max(uid) FROM users)) AS s (uid)
LEFT JOIN users u ON u.uid = s.uid
GROUP BY s.uid / 65536;

DROP TABLE users;

-- Unknown ids of an import are now gathered in the process (packed, deduplicated) and given
-- uids at its commit; nothing is staged in the database any more.
DROP TABLE import_staging;
