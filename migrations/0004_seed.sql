-- 0004_seed.sql: initial rows: the default group, the built-in alert rules
-- and the data retention settings.  Each insert is idempotent by its
-- natural key, so the file is harmless on a database seeded by hand.

INSERT INTO groups (name, description, platform)
SELECT 'default', 'Default group', 'anthropic'
WHERE NOT EXISTS (SELECT 1 FROM groups WHERE deleted_at IS NULL);

-- Built-in alert rules (10-minute cooldown each).  The metric names are the
-- ops_system_metrics columns the evaluator reads.
INSERT INTO ops_alert_rules (name, description, enabled, metric_type, operator,
                             threshold, window_minutes, sustained_minutes,
                             severity, notify_email, cooldown_minutes)
VALUES
	('Global success rate < 99%', 'Success rate below 99% for 2 minutes',
	 true, 'success_rate', '<', 99, 1, 2, 'P1', true, 10),
	('Global error rate > 1%', 'Error rate above 1% for 2 minutes',
	 true, 'error_rate', '>', 1, 1, 2, 'P1', true, 10),
	('P99 latency > 2000ms', 'P99 latency over 2 s in the 5-minute window',
	 true, 'p99_latency_ms', '>', 2000, 5, 2, 'P1', true, 10),
	('HTTP/2 errors > 20', 'More than 20 HTTP/2 errors per minute',
	 true, 'http2_errors', '>', 20, 1, 2, 'P2', true, 10),
	('CPU usage > 85%', 'CPU above 85% for 5 minutes',
	 true, 'cpu_usage_percent', '>', 85, 1, 5, 'P2', true, 10),
	('Memory usage > 90%', 'Memory above 90% for 5 minutes',
	 true, 'memory_usage_percent', '>', 90, 1, 5, 'P2', true, 10),
	('Queue depth > 50', 'More than 50 requests waiting for a slot',
	 true, 'concurrency_queue_depth', '>', 50, 1, 2, 'P2', true, 10)
ON CONFLICT (name) DO NOTHING;

INSERT INTO ops_data_retention_config (table_name, retention_days)
VALUES
	('ops_system_metrics', 30),
	('ops_dimension_stats', 30),
	('ops_error_logs', 30),
	('ops_alert_events', 90),
	('usage_logs', 90)
ON CONFLICT (table_name) DO NOTHING;
