-- 008 — what people do with their own account, guests, and user admin (issue 18).
--
-- password_reset: one-time password reset links. Only the SHA-256 of the
-- token is kept (as for sessions); a link is short-lived (auth.reset_seconds)
-- and single use (used_at). created_by is the admin who made it on the users
-- page, NULL when the person asked for it by email. Making a new link
-- leaves older unused ones valid until they expire; using one (or changing
-- the password) marks every open link of the user used.
--
-- session.guest: an ANON session made by "Use without an account" in the
-- browser (a cookie, lives as long as results are kept, slides on use),
-- as opposed to a curl token from POST /api/auth/anon. Turning a guest into
-- an account moves its requests to the new user and revokes the session.
--
-- The lower(...) text_pattern_ops indexes serve the admin's prefix search
-- on username, email and name (LIKE 'abc%').

CREATE TABLE IF NOT EXISTS password_reset (
    id          bigserial PRIMARY KEY,
    token_hash  bytea NOT NULL UNIQUE,
    user_id     bigint NOT NULL REFERENCES app_user(id) ON DELETE CASCADE,
    created_by  bigint REFERENCES app_user(id) ON DELETE SET NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL,
    used_at     timestamptz
);
CREATE INDEX IF NOT EXISTS password_reset_user_idx ON password_reset (user_id);

ALTER TABLE session ADD COLUMN IF NOT EXISTS guest boolean NOT NULL DEFAULT false;

CREATE INDEX IF NOT EXISTS app_user_username_prefix_idx
    ON app_user (lower(username) text_pattern_ops);
CREATE INDEX IF NOT EXISTS app_user_email_prefix_idx
    ON app_user (lower(email) text_pattern_ops);
CREATE INDEX IF NOT EXISTS app_user_first_prefix_idx
    ON app_user (lower(first_name) text_pattern_ops);
CREATE INDEX IF NOT EXISTS app_user_last_prefix_idx
    ON app_user (lower(last_name) text_pattern_ops);
