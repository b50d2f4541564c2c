-- 0005_account_state.sql: the scheduler's account state transitions.
--
-- Every change the scheduler makes to an account's schedulability after an
-- upstream answer (rate limited, overloaded, error, banned, temporarily
-- unschedulable, and back to ok when a success clears a recorded rate
-- limit) is written here in the same statement as the accounts UPDATE, so
-- the log and the row can never disagree.  Admin screens read it per
-- account, newest first; retention deletes by created_at.
--
-- States: 'ok', 'rate_limited', 'overloaded', 'error', 'disabled',
-- 'temp_unschedulable'.  until is when the new state ends by itself (NULL
-- for 'error' and 'ok'); http_status is the upstream status that caused it
-- (0: no response, a connection failure); instance names the scheduler
-- replica that decided.

CREATE TABLE account_state_log (
	id          bigserial PRIMARY KEY,
	account_id  bigint NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
	from_state  varchar(20) NOT NULL,
	to_state    varchar(20) NOT NULL,
	reason      text NOT NULL DEFAULT '',
	until       timestamptz,
	http_status integer NOT NULL DEFAULT 0,
	instance    varchar(64) NOT NULL DEFAULT '',
	created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX account_state_log_account_idx
	ON account_state_log (account_id, created_at DESC, id DESC);
CREATE INDEX account_state_log_created_at_idx ON account_state_log (created_at);
