-- 0001_initial: accounts, refresh tokens, profiles, per-game stats and
-- ratings, match history.
--
-- One dialect that SQLite and Postgres both accept: BIGINT, INTEGER, TEXT and
-- DOUBLE PRECISION only; no SERIAL or identity columns (ids come from the
-- application), no BOOLEAN, no timestamp types (times are Unix milliseconds in
-- BIGINT columns). Constraints are named so that the Postgres adapter can tell
-- which unique rule a write broke; the SQLite adapter reads the table and
-- column from the error instead.
--
-- Never edit this file once released: the checksum of every applied migration
-- is kept in schema_migrations and a changed file stops the server. Add a new
-- migration instead.

-- Accounts. Ids are in [2^62, 2^63) (ACCOUNT_ID_MIN), disjoint from the guest
-- and room ids the shards make. Guests have an account but no username and no
-- password until they upgrade.
CREATE TABLE users (
    id BIGINT NOT NULL,
    -- As typed at registration.
    username TEXT NULL,
    -- The username in ASCII lower case, computed by the application (SQL
    -- lower() differs between the two databases outside ASCII).
    username_key TEXT NULL,
    nickname TEXT NOT NULL,
    -- The argon2id PHC string.
    password_hash TEXT NULL,
    role TEXT NOT NULL,
    created_at_ms BIGINT NOT NULL,
    updated_at_ms BIGINT NOT NULL,
    CONSTRAINT users_pkey PRIMARY KEY (id),
    CONSTRAINT users_username_key_unique UNIQUE (username_key),
    CONSTRAINT users_id_range CHECK (id >= 4611686018427387904),
    CONSTRAINT users_username_length CHECK (
        username IS NULL OR length(username) BETWEEN 1 AND 32
    ),
    CONSTRAINT users_username_key_present CHECK (
        (username IS NULL AND username_key IS NULL)
        OR (username IS NOT NULL AND username_key IS NOT NULL)
    ),
    CONSTRAINT users_nickname_length CHECK (length(nickname) BETWEEN 1 AND 32),
    CONSTRAINT users_role CHECK (role IN ('guest', 'player', 'moderator', 'admin')),
    CONSTRAINT users_guest_has_no_credentials CHECK (
        role <> 'guest' OR (username IS NULL AND password_hash IS NULL)
    ),
    CONSTRAINT users_created_at CHECK (created_at_ms >= 0)
);

-- Refresh tokens, by the SHA-256 (hex) of their secret. The tokens of one
-- login share a family; presenting a used token revokes its whole family.
CREATE TABLE refresh_tokens (
    token_hash TEXT NOT NULL,
    user_id BIGINT NOT NULL,
    family_id TEXT NOT NULL,
    issued_at_ms BIGINT NOT NULL,
    expires_at_ms BIGINT NOT NULL,
    used_at_ms BIGINT NULL,
    revoked_at_ms BIGINT NULL,
    CONSTRAINT refresh_tokens_pkey PRIMARY KEY (token_hash),
    CONSTRAINT refresh_tokens_user_fkey FOREIGN KEY (user_id)
        REFERENCES users (id) ON DELETE CASCADE,
    CONSTRAINT refresh_tokens_hash_is_sha256_hex CHECK (length(token_hash) = 64),
    CONSTRAINT refresh_tokens_family_length CHECK (length(family_id) BETWEEN 1 AND 128),
    CONSTRAINT refresh_tokens_lifetime CHECK (expires_at_ms > issued_at_ms)
);
CREATE INDEX refresh_tokens_family_id ON refresh_tokens (family_id);
CREATE INDEX refresh_tokens_user_id ON refresh_tokens (user_id);

-- The public profile; the nickname lives on users. One row per user, made
-- with it.
CREATE TABLE player_profiles (
    user_id BIGINT NOT NULL,
    bio TEXT NOT NULL DEFAULT '',
    -- ISO 3166-1 alpha-2, upper case.
    country TEXT NULL,
    updated_at_ms BIGINT NOT NULL,
    CONSTRAINT player_profiles_pkey PRIMARY KEY (user_id),
    CONSTRAINT player_profiles_user_fkey FOREIGN KEY (user_id)
        REFERENCES users (id) ON DELETE CASCADE,
    CONSTRAINT player_profiles_bio_length CHECK (length(bio) <= 280),
    CONSTRAINT player_profiles_country CHECK (
        country IS NULL OR (length(country) = 2 AND country = upper(country))
    )
);

-- Each account's record per game, added to by every recorded match.
CREATE TABLE player_stats (
    user_id BIGINT NOT NULL,
    game TEXT NOT NULL,
    matches BIGINT NOT NULL DEFAULT 0,
    wins BIGINT NOT NULL DEFAULT 0,
    losses BIGINT NOT NULL DEFAULT 0,
    draws BIGINT NOT NULL DEFAULT 0,
    CONSTRAINT player_stats_pkey PRIMARY KEY (user_id, game),
    CONSTRAINT player_stats_user_fkey FOREIGN KEY (user_id)
        REFERENCES users (id) ON DELETE CASCADE,
    CONSTRAINT player_stats_counts CHECK (
        wins >= 0 AND losses >= 0 AND draws >= 0
        AND matches = wins + losses + draws
    )
);

-- Glicko-2 state per account and game. A row appears with the account's first
-- recorded match in that game (at the initial rating) or when a rating is set.
CREATE TABLE ratings (
    user_id BIGINT NOT NULL,
    game TEXT NOT NULL,
    rating DOUBLE PRECISION NOT NULL,
    deviation DOUBLE PRECISION NOT NULL,
    volatility DOUBLE PRECISION NOT NULL,
    updated_at_ms BIGINT NOT NULL,
    CONSTRAINT ratings_pkey PRIMARY KEY (user_id, game),
    CONSTRAINT ratings_user_fkey FOREIGN KEY (user_id)
        REFERENCES users (id) ON DELETE CASCADE,
    CONSTRAINT ratings_positive CHECK (deviation >= 0 AND volatility >= 0)
);
-- The leaderboard reads a game's rows in exactly this order (rating, then the
-- surer rating, then the id), so a page is an index range scan.
CREATE INDEX ratings_leaderboard ON ratings (game, rating DESC, deviation, user_id);

-- Finished matches. A room starts at most one match per millisecond, which
-- makes (room_id, started_at_ms) the natural key a retried write hits.
CREATE TABLE matches (
    id BIGINT NOT NULL,
    room_id BIGINT NOT NULL,
    game TEXT NOT NULL,
    -- "versus", "solo", ...
    mode TEXT NOT NULL,
    tournament_id BIGINT NULL,
    seed BIGINT NOT NULL,
    started_at_ms BIGINT NOT NULL,
    ended_at_ms BIGINT NOT NULL,
    CONSTRAINT matches_pkey PRIMARY KEY (id),
    CONSTRAINT matches_room_started_unique UNIQUE (room_id, started_at_ms),
    CONSTRAINT matches_game_length CHECK (length(game) BETWEEN 1 AND 64),
    CONSTRAINT matches_mode_length CHECK (length(mode) BETWEEN 1 AND 64),
    CONSTRAINT matches_duration CHECK (ended_at_ms >= started_at_ms)
);

-- The seats of a match. Guests without an account, and accounts deleted
-- since, have user_id NULL; the nickname keeps what was shown.
CREATE TABLE match_players (
    match_id BIGINT NOT NULL,
    seat INTEGER NOT NULL,
    user_id BIGINT NULL,
    nickname TEXT NOT NULL,
    placement INTEGER NOT NULL,
    outcome TEXT NOT NULL,
    score BIGINT NOT NULL,
    -- Game-specific figures, JSON text.
    stats_json TEXT NOT NULL DEFAULT '{}',
    CONSTRAINT match_players_pkey PRIMARY KEY (match_id, seat),
    CONSTRAINT match_players_match_fkey FOREIGN KEY (match_id)
        REFERENCES matches (id) ON DELETE CASCADE,
    CONSTRAINT match_players_user_fkey FOREIGN KEY (user_id)
        REFERENCES users (id) ON DELETE SET NULL,
    CONSTRAINT match_players_seat CHECK (seat >= 0),
    CONSTRAINT match_players_placement CHECK (placement >= 0),
    CONSTRAINT match_players_outcome CHECK (outcome IN ('win', 'loss', 'draw'))
);
-- A player's history, newest first by match id.
CREATE INDEX match_players_user_match ON match_players (user_id, match_id);
