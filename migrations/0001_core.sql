-- 0001_core.sql: the core data model (users, groups, proxies, accounts,
-- API keys, subscriptions, redeem codes, settings, user attributes).
--
-- Conventions (as in the original, with the fixes this project makes):
--   * bigserial ids; created_at/updated_at timestamptz; updated_at is kept
--     current by the trigger function s2a_touch_updated_at().
--   * Soft delete: a nullable deleted_at.  Every "unique" business key is a
--     partial unique index over live rows (deleted_at IS NULL), so a deleted
--     name or email can be reused.
--   * Money is exact numeric, never float: balances numeric(24,10) so a
--     cost of numeric(20,10) subtracts without rounding.
--   * Secrets are never stored in plaintext: API keys as sha256 hex plus a
--     short visible prefix, passwords as scrypt strings, account credentials
--     and proxy passwords as AES-256-GCM blobs (see services/crypto.h).
--   * Enumerations are CHECK constraints, so a bad value fails loudly.
--
-- Migration files run inside one transaction each (services/migrate.c);
-- they must not contain BEGIN/COMMIT of their own.

CREATE OR REPLACE FUNCTION s2a_touch_updated_at() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
	NEW.updated_at := now();
	RETURN NEW;
END;
$$;

-- Users.  password_hash holds "scrypt$N$r$p$salt_b64$hash_b64".
-- token_version is persisted (the original compared it but never stored
-- it): a password change or logout-all bumps it, which revokes every JWT
-- issued with the previous value.  The balance may go negative only through
-- usage charged after the fact; admin operations refuse to make it negative.
CREATE TABLE users (
	id             bigserial PRIMARY KEY,
	email          varchar(255) NOT NULL,
	password_hash  text NOT NULL DEFAULT '',
	role           varchar(16) NOT NULL DEFAULT 'user'
	               CHECK (role IN ('admin', 'user')),
	status         varchar(16) NOT NULL DEFAULT 'active'
	               CHECK (status IN ('active', 'disabled')),
	balance        numeric(24,10) NOT NULL DEFAULT 0,
	concurrency    integer NOT NULL DEFAULT 5 CHECK (concurrency >= 0),
	username       varchar(100) NOT NULL DEFAULT '',
	notes          text NOT NULL DEFAULT '',
	token_version  bigint NOT NULL DEFAULT 0,
	totp_secret_enc bytea,
	totp_enabled   boolean NOT NULL DEFAULT false,
	created_at     timestamptz NOT NULL DEFAULT now(),
	updated_at     timestamptz NOT NULL DEFAULT now(),
	deleted_at     timestamptz
);
CREATE UNIQUE INDEX users_email_live_uq ON users (lower(email))
	WHERE deleted_at IS NULL;
CREATE INDEX users_status_idx ON users (status);
CREATE INDEX users_deleted_at_idx ON users (deleted_at);
CREATE TRIGGER users_touch BEFORE UPDATE ON users
	FOR EACH ROW EXECUTE FUNCTION s2a_touch_updated_at();

-- Groups.  subscription_type 'standard' pays from the balance,
-- 'subscription' is a quota-limited plan with daily/weekly/monthly limits.
-- fail_fast: when no account of the group is available, reject at once
-- instead of queueing.
CREATE TABLE groups (
	id                    bigserial PRIMARY KEY,
	name                  varchar(100) NOT NULL,
	description           text NOT NULL DEFAULT '',
	platform              varchar(32) NOT NULL DEFAULT 'anthropic'
	                      CHECK (platform IN ('anthropic', 'openai', 'gemini', 'antigravity')),
	rate_multiplier       numeric(10,4) NOT NULL DEFAULT 1.0
	                      CHECK (rate_multiplier >= 0),
	is_exclusive          boolean NOT NULL DEFAULT false,
	status                varchar(16) NOT NULL DEFAULT 'active'
	                      CHECK (status IN ('active', 'disabled')),
	subscription_type     varchar(16) NOT NULL DEFAULT 'standard'
	                      CHECK (subscription_type IN ('standard', 'subscription')),
	daily_limit_usd       numeric(20,8) CHECK (daily_limit_usd >= 0),
	weekly_limit_usd      numeric(20,8) CHECK (weekly_limit_usd >= 0),
	monthly_limit_usd     numeric(20,8) CHECK (monthly_limit_usd >= 0),
	default_validity_days integer NOT NULL DEFAULT 30
	                      CHECK (default_validity_days BETWEEN 1 AND 36500),
	fail_fast             boolean NOT NULL DEFAULT false,
	claude_code_only      boolean NOT NULL DEFAULT false,
	fallback_group_id     bigint REFERENCES groups(id) ON DELETE SET NULL,
	model_routing         jsonb NOT NULL DEFAULT '{}'::jsonb,
	model_routing_enabled boolean NOT NULL DEFAULT false,
	sort_order            integer NOT NULL DEFAULT 0,
	created_at            timestamptz NOT NULL DEFAULT now(),
	updated_at            timestamptz NOT NULL DEFAULT now(),
	deleted_at            timestamptz
);
CREATE UNIQUE INDEX groups_name_live_uq ON groups (name) WHERE deleted_at IS NULL;
CREATE INDEX groups_platform_idx ON groups (platform);
CREATE INDEX groups_status_idx ON groups (status);
CREATE INDEX groups_subscription_type_idx ON groups (subscription_type);
CREATE INDEX groups_is_exclusive_idx ON groups (is_exclusive);
CREATE INDEX groups_deleted_at_idx ON groups (deleted_at);
CREATE TRIGGER groups_touch BEFORE UPDATE ON groups
	FOR EACH ROW EXECUTE FUNCTION s2a_touch_updated_at();

-- Outbound proxies.  password_enc is an AES-256-GCM blob (crypto_seal) with
-- associated data "sub2api:proxy:<id>:password"; NULL when no password.
CREATE TABLE proxies (
	id           bigserial PRIMARY KEY,
	name         varchar(100) NOT NULL,
	protocol     varchar(16) NOT NULL
	             CHECK (protocol IN ('http', 'https', 'socks5')),
	host         varchar(255) NOT NULL,
	port         integer NOT NULL CHECK (port BETWEEN 1 AND 65535),
	username     varchar(255) NOT NULL DEFAULT '',
	password_enc bytea,
	status       varchar(16) NOT NULL DEFAULT 'active'
	             CHECK (status IN ('active', 'disabled')),
	created_at   timestamptz NOT NULL DEFAULT now(),
	updated_at   timestamptz NOT NULL DEFAULT now(),
	deleted_at   timestamptz
);
CREATE INDEX proxies_status_idx ON proxies (status);
CREATE INDEX proxies_deleted_at_idx ON proxies (deleted_at);
CREATE TRIGGER proxies_touch BEFORE UPDATE ON proxies
	FOR EACH ROW EXECUTE FUNCTION s2a_touch_updated_at();

-- Upstream accounts.  credentials_enc is the AES-256-GCM blob (crypto_seal:
-- version | nonce | ciphertext | tag) of the credentials JSON object
-- (access_token, refresh_token, api_key, base_url, model_mapping, ...), with
-- associated data "sub2api:account:<id>:credentials", so a blob copied to
-- another row does not open.  extra stays plain jsonb (nothing secret).
-- status: 'active', 'disabled' (by an admin) or 'error' (401/402/403 or
-- token refresh failure; cleared by an admin).
CREATE TABLE accounts (
	id                        bigserial PRIMARY KEY,
	name                      varchar(100) NOT NULL,
	platform                  varchar(32) NOT NULL
	                          CHECK (platform IN ('anthropic', 'openai', 'gemini', 'antigravity')),
	type                      varchar(32) NOT NULL
	                          CHECK (type IN ('oauth', 'setup-token', 'apikey')),
	credentials_enc           bytea NOT NULL,
	extra                     jsonb NOT NULL DEFAULT '{}'::jsonb,
	proxy_id                  bigint REFERENCES proxies(id) ON DELETE SET NULL,
	concurrency               integer NOT NULL DEFAULT 3 CHECK (concurrency >= 0),
	priority                  integer NOT NULL DEFAULT 50,
	status                    varchar(16) NOT NULL DEFAULT 'active'
	                          CHECK (status IN ('active', 'disabled', 'error')),
	error_message             text NOT NULL DEFAULT '',
	last_used_at              timestamptz,
	schedulable               boolean NOT NULL DEFAULT true,
	rate_limited_at           timestamptz,
	rate_limit_reset_at       timestamptz,
	overload_until            timestamptz,
	temp_unschedulable_until  timestamptz,
	temp_unschedulable_reason text NOT NULL DEFAULT '',
	session_window_start      timestamptz,
	session_window_end        timestamptz,
	session_window_status     varchar(20) NOT NULL DEFAULT '',
	created_at                timestamptz NOT NULL DEFAULT now(),
	updated_at                timestamptz NOT NULL DEFAULT now(),
	deleted_at                timestamptz
);
CREATE INDEX accounts_platform_idx ON accounts (platform);
CREATE INDEX accounts_type_idx ON accounts (type);
CREATE INDEX accounts_status_idx ON accounts (status);
CREATE INDEX accounts_proxy_id_idx ON accounts (proxy_id);
CREATE INDEX accounts_priority_idx ON accounts (priority);
CREATE INDEX accounts_last_used_at_idx ON accounts (last_used_at);
CREATE INDEX accounts_schedulable_idx ON accounts (schedulable);
CREATE INDEX accounts_rate_limited_at_idx ON accounts (rate_limited_at);
CREATE INDEX accounts_rate_limit_reset_at_idx ON accounts (rate_limit_reset_at);
CREATE INDEX accounts_overload_until_idx ON accounts (overload_until);
CREATE INDEX accounts_temp_unsched_idx ON accounts (temp_unschedulable_until);
CREATE INDEX accounts_deleted_at_idx ON accounts (deleted_at);
CREATE TRIGGER accounts_touch BEFORE UPDATE ON accounts
	FOR EACH ROW EXECUTE FUNCTION s2a_touch_updated_at();

CREATE TABLE account_groups (
	account_id bigint NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
	group_id   bigint NOT NULL REFERENCES groups(id) ON DELETE CASCADE,
	priority   integer NOT NULL DEFAULT 50,
	created_at timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (account_id, group_id)
);
CREATE INDEX account_groups_group_id_idx ON account_groups (group_id);

-- API keys.  The plaintext key ("sk-" + 64 hex by default) is shown once at
-- creation and never stored: key_hash is the lowercase sha256 hex of the
-- whole key (unique over all rows, deleted ones included, so a revoked key
-- can never authenticate again by accident), key_prefix its first
-- characters for display.  Later-feature columns: USD quota, expiry, IP
-- allow/deny lists (CIDR text), per-key concurrency (0 = no own limit).
CREATE TABLE api_keys (
	id             bigserial PRIMARY KEY,
	user_id        bigint NOT NULL REFERENCES users(id) ON DELETE CASCADE,
	key_hash       char(64) NOT NULL CHECK (key_hash ~ '^[0-9a-f]{64}$'),
	key_prefix     varchar(16) NOT NULL,
	name           varchar(100) NOT NULL DEFAULT '',
	group_id       bigint REFERENCES groups(id) ON DELETE SET NULL,
	status         varchar(16) NOT NULL DEFAULT 'active'
	               CHECK (status IN ('active', 'inactive')),
	quota_usd      numeric(20,10) CHECK (quota_usd >= 0),
	quota_used_usd numeric(20,10) NOT NULL DEFAULT 0,
	expires_at     timestamptz,
	ip_whitelist   text[] NOT NULL DEFAULT '{}',
	ip_blacklist   text[] NOT NULL DEFAULT '{}',
	concurrency    integer NOT NULL DEFAULT 0 CHECK (concurrency >= 0),
	last_used_at   timestamptz,
	created_at     timestamptz NOT NULL DEFAULT now(),
	updated_at     timestamptz NOT NULL DEFAULT now(),
	deleted_at     timestamptz
);
CREATE UNIQUE INDEX api_keys_key_hash_uq ON api_keys (key_hash);
CREATE INDEX api_keys_user_id_idx ON api_keys (user_id);
CREATE INDEX api_keys_group_id_idx ON api_keys (group_id);
CREATE INDEX api_keys_status_idx ON api_keys (status);
CREATE INDEX api_keys_deleted_at_idx ON api_keys (deleted_at);
CREATE TRIGGER api_keys_touch BEFORE UPDATE ON api_keys
	FOR EACH ROW EXECUTE FUNCTION s2a_touch_updated_at();

CREATE TABLE user_allowed_groups (
	user_id    bigint NOT NULL REFERENCES users(id) ON DELETE CASCADE,
	group_id   bigint NOT NULL REFERENCES groups(id) ON DELETE CASCADE,
	created_at timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (user_id, group_id)
);
CREATE INDEX user_allowed_groups_group_id_idx ON user_allowed_groups (group_id);

-- Subscriptions to plan groups.  Usage counters are exact numeric and are
-- charged with the multiplied (actual) cost, not the raw one.
CREATE TABLE user_subscriptions (
	id                  bigserial PRIMARY KEY,
	user_id             bigint NOT NULL REFERENCES users(id) ON DELETE CASCADE,
	group_id            bigint NOT NULL REFERENCES groups(id) ON DELETE CASCADE,
	starts_at           timestamptz NOT NULL DEFAULT now(),
	expires_at          timestamptz NOT NULL
	                    CHECK (expires_at <= '2099-12-31 23:59:59+00'),
	status              varchar(16) NOT NULL DEFAULT 'active'
	                    CHECK (status IN ('active', 'expired', 'suspended')),
	daily_window_start   timestamptz,
	weekly_window_start  timestamptz,
	monthly_window_start timestamptz,
	daily_usage_usd     numeric(20,10) NOT NULL DEFAULT 0,
	weekly_usage_usd    numeric(20,10) NOT NULL DEFAULT 0,
	monthly_usage_usd   numeric(20,10) NOT NULL DEFAULT 0,
	assigned_by         bigint REFERENCES users(id) ON DELETE SET NULL,
	assigned_at         timestamptz NOT NULL DEFAULT now(),
	notes               text NOT NULL DEFAULT '',
	created_at          timestamptz NOT NULL DEFAULT now(),
	updated_at          timestamptz NOT NULL DEFAULT now(),
	deleted_at          timestamptz
);
CREATE UNIQUE INDEX user_subscriptions_user_group_live_uq
	ON user_subscriptions (user_id, group_id) WHERE deleted_at IS NULL;
CREATE INDEX user_subscriptions_group_id_idx ON user_subscriptions (group_id);
CREATE INDEX user_subscriptions_status_idx ON user_subscriptions (status);
CREATE INDEX user_subscriptions_expires_at_idx ON user_subscriptions (expires_at);
CREATE INDEX user_subscriptions_deleted_at_idx ON user_subscriptions (deleted_at);
CREATE TRIGGER user_subscriptions_touch BEFORE UPDATE ON user_subscriptions
	FOR EACH ROW EXECUTE FUNCTION s2a_touch_updated_at();

-- Redeem codes.  One format only: 32 lowercase hex characters (16 random
-- bytes, crypto_random_hex), which is exactly the column length; the
-- original's second generator emitted 35-character dashed codes that did
-- not fit.  The CHECK keeps every writer honest.  Admin balance changes are
-- audited in balance_ledger (0002), not here; the admin_* types remain for
-- imported history.
CREATE TABLE redeem_codes (
	id            bigserial PRIMARY KEY,
	code          varchar(32) NOT NULL CHECK (code ~ '^[0-9a-f]{32}$'),
	type          varchar(32) NOT NULL DEFAULT 'balance'
	              CHECK (type IN ('balance', 'concurrency', 'subscription',
	                              'admin_balance', 'admin_concurrency')),
	value         numeric(20,8) NOT NULL DEFAULT 0,
	status        varchar(16) NOT NULL DEFAULT 'unused'
	              CHECK (status IN ('unused', 'used', 'expired')),
	used_by       bigint REFERENCES users(id) ON DELETE SET NULL,
	used_at       timestamptz,
	notes         text NOT NULL DEFAULT '',
	group_id      bigint REFERENCES groups(id) ON DELETE SET NULL,
	validity_days integer NOT NULL DEFAULT 30
	              CHECK (validity_days BETWEEN 1 AND 36500),
	created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX redeem_codes_code_uq ON redeem_codes (code);
CREATE INDEX redeem_codes_status_idx ON redeem_codes (status);
CREATE INDEX redeem_codes_used_by_idx ON redeem_codes (used_by);
CREATE INDEX redeem_codes_group_id_idx ON redeem_codes (group_id);

CREATE TABLE settings (
	id         bigserial PRIMARY KEY,
	key        varchar(100) NOT NULL UNIQUE,
	value      text NOT NULL DEFAULT '',
	updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE TRIGGER settings_touch BEFORE UPDATE ON settings
	FOR EACH ROW EXECUTE FUNCTION s2a_touch_updated_at();

CREATE TABLE user_attribute_definitions (
	id            bigserial PRIMARY KEY,
	key           varchar(100) NOT NULL,
	name          varchar(255) NOT NULL,
	description   text NOT NULL DEFAULT '',
	type          varchar(32) NOT NULL
	              CHECK (type IN ('text', 'textarea', 'number', 'email', 'url',
	                              'date', 'select', 'multi_select')),
	options       jsonb NOT NULL DEFAULT '[]'::jsonb,
	required      boolean NOT NULL DEFAULT false,
	validation    jsonb NOT NULL DEFAULT '{}'::jsonb,
	placeholder   varchar(255) NOT NULL DEFAULT '',
	display_order integer NOT NULL DEFAULT 0,
	enabled       boolean NOT NULL DEFAULT true,
	created_at    timestamptz NOT NULL DEFAULT now(),
	updated_at    timestamptz NOT NULL DEFAULT now(),
	deleted_at    timestamptz
);
CREATE UNIQUE INDEX user_attribute_definitions_key_live_uq
	ON user_attribute_definitions (key) WHERE deleted_at IS NULL;
CREATE INDEX user_attribute_definitions_order_idx
	ON user_attribute_definitions (display_order);
CREATE TRIGGER user_attribute_definitions_touch
	BEFORE UPDATE ON user_attribute_definitions
	FOR EACH ROW EXECUTE FUNCTION s2a_touch_updated_at();

CREATE TABLE user_attribute_values (
	id           bigserial PRIMARY KEY,
	user_id      bigint NOT NULL REFERENCES users(id) ON DELETE CASCADE,
	attribute_id bigint NOT NULL
	             REFERENCES user_attribute_definitions(id) ON DELETE CASCADE,
	value        text NOT NULL DEFAULT '',
	created_at   timestamptz NOT NULL DEFAULT now(),
	updated_at   timestamptz NOT NULL DEFAULT now(),
	UNIQUE (user_id, attribute_id)
);
CREATE INDEX user_attribute_values_attribute_id_idx
	ON user_attribute_values (attribute_id);
CREATE TRIGGER user_attribute_values_touch BEFORE UPDATE ON user_attribute_values
	FOR EACH ROW EXECUTE FUNCTION s2a_touch_updated_at();
