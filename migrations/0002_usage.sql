-- 0002_usage.sql: usage records and the lossless billing tables.
--
-- Billing design (docs/DESIGN.md section 4): every gateway instance numbers
-- its usage events (instance_id, seq).  Billing inserts the usage_logs row,
-- moves the balance (or subscription usage) and advances billing_cursors in
-- ONE transaction.  usage_logs.request_id is unique on its own: it is the
-- idempotency key, so a replayed event inserts nothing (ON CONFLICT DO
-- NOTHING) and the balance moves only when the insert happened.  Events
-- that can never be applied (unknown key, malformed) go to
-- billing_dead_letters so the cursor can still advance without losing them.

-- One row per completed request.  Columns of the original plus the later
-- user_agent/ip_address/image/reasoning ones.  request_id is the gateway's
-- request id (at most 64 characters).  Costs are USD, exact numeric(20,10);
-- total_cost is the raw cost, actual_cost = total_cost * rate_multiplier.
-- billing_type: 0 = balance, 1 = subscription.
CREATE TABLE usage_logs (
	id                       bigserial PRIMARY KEY,
	user_id                  bigint NOT NULL REFERENCES users(id) ON DELETE CASCADE,
	api_key_id               bigint NOT NULL REFERENCES api_keys(id) ON DELETE CASCADE,
	account_id               bigint NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
	request_id               varchar(64) NOT NULL,
	model                    varchar(100) NOT NULL,
	group_id                 bigint REFERENCES groups(id) ON DELETE SET NULL,
	subscription_id          bigint REFERENCES user_subscriptions(id) ON DELETE SET NULL,
	input_tokens             integer NOT NULL DEFAULT 0,
	output_tokens            integer NOT NULL DEFAULT 0,
	cache_creation_tokens    integer NOT NULL DEFAULT 0,
	cache_read_tokens        integer NOT NULL DEFAULT 0,
	cache_creation_5m_tokens integer NOT NULL DEFAULT 0,
	cache_creation_1h_tokens integer NOT NULL DEFAULT 0,
	input_cost               numeric(20,10) NOT NULL DEFAULT 0,
	output_cost              numeric(20,10) NOT NULL DEFAULT 0,
	cache_creation_cost      numeric(20,10) NOT NULL DEFAULT 0,
	cache_read_cost          numeric(20,10) NOT NULL DEFAULT 0,
	total_cost               numeric(20,10) NOT NULL DEFAULT 0,
	actual_cost              numeric(20,10) NOT NULL DEFAULT 0,
	rate_multiplier          numeric(10,4) NOT NULL DEFAULT 1,
	account_rate_multiplier  numeric(10,4),
	billing_type             smallint NOT NULL DEFAULT 0
	                         CHECK (billing_type IN (0, 1)),
	stream                   boolean NOT NULL DEFAULT false,
	duration_ms              integer,
	first_token_ms           integer,
	user_agent               varchar(512),
	ip_address               varchar(45),
	image_count              integer NOT NULL DEFAULT 0,
	image_size               varchar(10),
	reasoning_effort         varchar(20),
	instance_id              varchar(64),
	seq                      bigint,
	created_at               timestamptz NOT NULL DEFAULT now(),
	CONSTRAINT usage_logs_request_id_uq UNIQUE (request_id)
);
CREATE INDEX usage_logs_user_id_idx ON usage_logs (user_id);
CREATE INDEX usage_logs_api_key_id_idx ON usage_logs (api_key_id);
CREATE INDEX usage_logs_account_id_idx ON usage_logs (account_id);
CREATE INDEX usage_logs_group_id_idx ON usage_logs (group_id);
CREATE INDEX usage_logs_subscription_id_idx ON usage_logs (subscription_id);
CREATE INDEX usage_logs_created_at_idx ON usage_logs (created_at);
CREATE INDEX usage_logs_model_idx ON usage_logs (model);
CREATE INDEX usage_logs_billing_type_idx ON usage_logs (billing_type);
CREATE INDEX usage_logs_user_created_idx ON usage_logs (user_id, created_at);
CREATE INDEX usage_logs_api_key_created_idx ON usage_logs (api_key_id, created_at);
CREATE INDEX usage_logs_account_created_idx ON usage_logs (account_id, created_at);
CREATE INDEX usage_logs_model_created_idx ON usage_logs (model, created_at);
CREATE INDEX usage_logs_subscription_created_idx
	ON usage_logs (subscription_id, created_at);

-- Every balance movement, with the balance it produced.  For any user,
-- sum(delta) equals users.balance (given a zero start).  kind:
--   usage        a charge for one request; ref = request_id (unique, so a
--                request is charged at most once)
--   topup        payment or other credit; ref = payment reference
--   redeem       a redeem code; ref = the code
--   admin_adjust sub2apictl / admin UI; ref = who or what
--   refund       a credit reversing a charge; ref = request id
CREATE TABLE balance_ledger (
	id            bigserial PRIMARY KEY,
	user_id       bigint NOT NULL REFERENCES users(id) ON DELETE CASCADE,
	delta         numeric(24,10) NOT NULL,
	balance_after numeric(24,10) NOT NULL,
	kind          varchar(16) NOT NULL
	              CHECK (kind IN ('usage', 'topup', 'redeem', 'admin_adjust', 'refund')),
	ref           varchar(128) NOT NULL DEFAULT '',
	note          text NOT NULL DEFAULT '',
	created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX balance_ledger_user_created_idx ON balance_ledger (user_id, created_at);
CREATE INDEX balance_ledger_kind_idx ON balance_ledger (kind);
CREATE UNIQUE INDEX balance_ledger_usage_ref_uq ON balance_ledger (ref)
	WHERE kind = 'usage';

-- Per gateway instance, the highest contiguous event seq committed.
CREATE TABLE billing_cursors (
	instance_id   text PRIMARY KEY,
	committed_seq bigint NOT NULL DEFAULT 0 CHECK (committed_seq >= 0),
	updated_at    timestamptz NOT NULL DEFAULT now()
);

-- Events billing could not apply.  payload is the event as received (the
-- msgpack envelope bytes), kept verbatim for replay once fixed.
CREATE TABLE billing_dead_letters (
	id          bigserial PRIMARY KEY,
	instance_id text NOT NULL,
	seq         bigint NOT NULL,
	request_id  varchar(64),
	reason      text NOT NULL,
	payload     bytea,
	resolved_at timestamptz,
	created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX billing_dead_letters_instance_seq_idx
	ON billing_dead_letters (instance_id, seq);
CREATE INDEX billing_dead_letters_request_id_idx ON billing_dead_letters (request_id);
CREATE INDEX billing_dead_letters_unresolved_idx ON billing_dead_letters (created_at)
	WHERE resolved_at IS NULL;
