-- The directory moves from a row per user to a row per batch of users (src/store/user-store.ts).
-- A row per user meant a unique text index on the write path of every new user (~70% of the cost
-- of writing them); uniqueness is now kept by the service, which assigns uids under an advisory
-- lock after reading every chunk committed before it.
--
-- A chunk holds `id_count` consecutive uids from `first_uid`: their ids in uid order, as UTF-8,
-- each followed by a NUL byte (ids never contain U+0000). An empty entry is a uid never assigned
-- (the old identity column could skip values). STORAGE EXTERNAL: ids are written and read whole,
-- and compressing them would cost more time than the bytes it saves.
CREATE TABLE user_chunks (
  first_uid  bigint PRIMARY KEY,
  id_count   integer NOT NULL CHECK (id_count > 0),
  ids        bytea NOT NULL
);
ALTER TABLE user_chunks ALTER COLUMN ids SET STORAGE EXTERNAL;

-- Existing users, 65,536 uids per chunk, gaps kept as empty entries.
INSERT INTO user_chunks (first_uid, id_count, ids)
SELECT s.uid / 65536 * 65536,
       max(s.uid) - s.uid / 65536 * 65536 + 1,
       string_agg(coalesce(convert_to(u.external_id, 'UTF8'), ''::bytea) || '\x00'::bytea, ''::bytea ORDER BY s.uid)
FROM generate_series(0, (SELECT max(uid) FROM users)) AS s (uid)
LEFT JOIN users u ON u.uid = s.uid
GROUP BY s.uid / 65536;

DROP TABLE users;

-- Unknown ids of an import are now gathered in the process (packed, deduplicated) and given
-- uids at its commit; nothing is staged in the database any more.
DROP TABLE import_staging;
