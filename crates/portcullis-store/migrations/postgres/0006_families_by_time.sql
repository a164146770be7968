-- Token families of a client are found by client and time (see migrations/sqlite/0006):
-- one grant batch appends to the end of a client's run instead of one index page
-- per label.
DROP INDEX token_families_by_client;
CREATE INDEX token_families_by_client ON token_families (client_id, created_at);
