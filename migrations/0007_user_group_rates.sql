-- 0007_user_group_rates.sql: a user's own rate multiplier in a group.
--
-- groups.rate_multiplier prices every user of a group alike; a row here
-- replaces it for one user in one group (the original's per-user group
-- multipliers).  Billing prices each usage event with the row of its
-- (user, group) when there is one, else the group's multiplier, and
-- records the multiplier it used in usage_logs.rate_multiplier; the
-- scheduler reports the same effective value with its decision.  Deleting
-- the user or the group deletes the row.

CREATE TABLE user_group_rate_multipliers (
	user_id         bigint NOT NULL REFERENCES users(id) ON DELETE CASCADE,
	group_id        bigint NOT NULL REFERENCES groups(id) ON DELETE CASCADE,
	rate_multiplier numeric(10,4) NOT NULL CHECK (rate_multiplier >= 0),
	created_at      timestamptz NOT NULL DEFAULT now(),
	updated_at      timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (user_id, group_id)
);
CREATE INDEX user_group_rate_multipliers_group_idx
	ON user_group_rate_multipliers (group_id);
CREATE TRIGGER user_group_rate_multipliers_touch
	BEFORE UPDATE ON user_group_rate_multipliers
	FOR EACH ROW EXECUTE FUNCTION s2a_touch_updated_at();
