-- 0006_usage_log_indexes.sql: drop the usage_logs indexes that a
-- composite one already serves.
--
-- Every usage_logs row is written once per request, in billing's hot
-- path, and every index costs PostgreSQL CPU on each insert (a quarter of
-- the insert's time went to index maintenance with 14 indexes).  A B-tree
-- on (x, created_at) answers every lookup on x alone as well as the
-- single-column index on x does, so these five only cost writes:
--   user_id          served by usage_logs_user_created_idx
--   api_key_id       served by usage_logs_api_key_created_idx
--   account_id       served by usage_logs_account_created_idx
--   model            served by usage_logs_model_created_idx
--   subscription_id  served by usage_logs_subscription_created_idx
-- Foreign-key cascades (ON DELETE of a user, key, account or
-- subscription) find their rows through the same composite indexes.

DROP INDEX IF EXISTS usage_logs_user_id_idx;
DROP INDEX IF EXISTS usage_logs_api_key_id_idx;
DROP INDEX IF EXISTS usage_logs_account_id_idx;
DROP INDEX IF EXISTS usage_logs_model_idx;
DROP INDEX IF EXISTS usage_logs_subscription_id_idx;
