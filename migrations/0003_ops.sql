-- 0003_ops.sql: operations monitoring (error log, system metrics, alert
-- rules and events, dimension stats, retention config), the health score
-- function and the two convenience views.
--
-- The column set follows the original's ops v1 (its migrations 017, 018,
-- 019, 023 and 025) so dashboards and rules keep their meaning.

CREATE TABLE ops_error_logs (
	id                  bigserial PRIMARY KEY,
	request_id          varchar(64),
	user_id             bigint,
	api_key_id          bigint,
	account_id          bigint,
	group_id            bigint,
	client_ip           inet,
	error_phase         varchar(32) NOT NULL,
	error_type          varchar(64) NOT NULL,
	severity            varchar(4) NOT NULL CHECK (severity IN ('P0', 'P1', 'P2', 'P3')),
	status_code         integer,
	platform            varchar(32),
	model               varchar(100),
	request_path        varchar(256),
	stream              boolean NOT NULL DEFAULT false,
	error_message       text,
	error_body          text,
	provider_error_code varchar(64),
	provider_error_type varchar(64),
	is_retryable        boolean NOT NULL DEFAULT false,
	is_user_actionable  boolean NOT NULL DEFAULT false,
	retry_count         integer NOT NULL DEFAULT 0,
	completion_status   varchar(16),
	duration_ms         integer,
	created_at          timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX ops_error_logs_created_at_idx ON ops_error_logs (created_at DESC);
CREATE INDEX ops_error_logs_phase_idx ON ops_error_logs (error_phase);
CREATE INDEX ops_error_logs_platform_idx ON ops_error_logs (platform);
CREATE INDEX ops_error_logs_severity_idx ON ops_error_logs (severity);
CREATE INDEX ops_error_logs_phase_platform_time_idx
	ON ops_error_logs (error_phase, platform, created_at DESC);

-- One row per collector run and window (1 and 5 minutes).
CREATE TABLE ops_system_metrics (
	id                      bigserial PRIMARY KEY,
	-- 017
	success_rate            double precision,
	error_rate              double precision,
	p95_latency_ms          integer,
	p99_latency_ms          integer,
	http2_errors            integer,
	active_alerts           integer,
	created_at              timestamptz NOT NULL DEFAULT now(),
	-- 018
	window_minutes          integer NOT NULL DEFAULT 1,
	cpu_usage_percent       double precision,
	memory_used_mb          bigint,
	memory_total_mb         bigint,
	memory_usage_percent    double precision,
	heap_alloc_mb           bigint,
	gc_pause_ms             double precision,
	concurrency_queue_depth integer,
	-- 023
	request_count           bigint NOT NULL DEFAULT 0,
	success_count           bigint NOT NULL DEFAULT 0,
	error_count             bigint NOT NULL DEFAULT 0,
	-- 025
	qps                     numeric(10,2) NOT NULL DEFAULT 0,
	tps                     numeric(10,2) NOT NULL DEFAULT 0,
	error_4xx_count         bigint NOT NULL DEFAULT 0,
	error_5xx_count         bigint NOT NULL DEFAULT 0,
	error_timeout_count     bigint NOT NULL DEFAULT 0,
	latency_p50             numeric(10,2),
	latency_p999            numeric(10,2),
	latency_avg             numeric(10,2),
	latency_max             numeric(10,2),
	upstream_latency_avg    numeric(10,2),
	disk_used               bigint,
	disk_total              bigint,
	disk_iops               bigint,
	network_in_bytes        bigint,
	network_out_bytes       bigint,
	goroutine_count         integer,
	db_conn_active          integer,
	db_conn_idle            integer,
	db_conn_waiting         integer,
	token_consumed          bigint NOT NULL DEFAULT 0,
	token_rate              numeric(10,2) NOT NULL DEFAULT 0,
	active_subscriptions    integer,
	tags                    jsonb NOT NULL DEFAULT '{}'::jsonb
);
CREATE INDEX ops_system_metrics_created_at_idx ON ops_system_metrics (created_at DESC);
CREATE INDEX ops_system_metrics_window_time_idx
	ON ops_system_metrics (window_minutes, created_at DESC);
CREATE INDEX ops_system_metrics_tags_idx ON ops_system_metrics USING gin (tags);

CREATE TABLE ops_alert_rules (
	id                bigserial PRIMARY KEY,
	name              varchar(128) NOT NULL,
	description       text NOT NULL DEFAULT '',
	enabled           boolean NOT NULL DEFAULT true,
	metric_type       varchar(64) NOT NULL,
	operator          varchar(8) NOT NULL
	                  CHECK (operator IN ('>', '>=', '<', '<=', '==', '!=')),
	threshold         double precision NOT NULL,
	window_minutes    integer NOT NULL DEFAULT 1 CHECK (window_minutes > 0),
	sustained_minutes integer NOT NULL DEFAULT 1 CHECK (sustained_minutes > 0),
	severity          varchar(4) NOT NULL DEFAULT 'P1'
	                  CHECK (severity IN ('P0', 'P1', 'P2', 'P3')),
	notify_email      boolean NOT NULL DEFAULT false,
	notify_webhook    boolean NOT NULL DEFAULT false,
	webhook_url       text NOT NULL DEFAULT '',
	cooldown_minutes  integer NOT NULL DEFAULT 10 CHECK (cooldown_minutes >= 0),
	created_at        timestamptz NOT NULL DEFAULT now(),
	updated_at        timestamptz NOT NULL DEFAULT now(),
	-- 025
	dimension_filters jsonb,
	notify_channels   jsonb,
	notify_config     jsonb,
	created_by        varchar(100),
	last_triggered_at timestamptz
);
CREATE UNIQUE INDEX ops_alert_rules_name_uq ON ops_alert_rules (name);
CREATE INDEX ops_alert_rules_enabled_idx ON ops_alert_rules (enabled);
CREATE INDEX ops_alert_rules_metric_window_idx
	ON ops_alert_rules (metric_type, window_minutes);
CREATE TRIGGER ops_alert_rules_touch BEFORE UPDATE ON ops_alert_rules
	FOR EACH ROW EXECUTE FUNCTION s2a_touch_updated_at();

CREATE TABLE ops_alert_events (
	id              bigserial PRIMARY KEY,
	rule_id         bigint NOT NULL REFERENCES ops_alert_rules(id) ON DELETE CASCADE,
	severity        varchar(4) NOT NULL,
	status          varchar(16) NOT NULL DEFAULT 'firing'
	                CHECK (status IN ('firing', 'resolved')),
	title           varchar(200) NOT NULL DEFAULT '',
	description     text NOT NULL DEFAULT '',
	metric_value    double precision,
	threshold_value double precision,
	fired_at        timestamptz NOT NULL DEFAULT now(),
	resolved_at     timestamptz,
	email_sent      boolean NOT NULL DEFAULT false,
	webhook_sent    boolean NOT NULL DEFAULT false,
	created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX ops_alert_events_rule_status_idx ON ops_alert_events (rule_id, status);
CREATE INDEX ops_alert_events_fired_at_idx ON ops_alert_events (fired_at DESC);

CREATE TABLE ops_dimension_stats (
	id              bigserial PRIMARY KEY,
	timestamp       timestamptz NOT NULL,
	dimension_type  varchar(50) NOT NULL
	                CHECK (dimension_type IN ('account', 'api_path', 'provider', 'region')),
	dimension_value varchar(255) NOT NULL,
	request_count   bigint NOT NULL DEFAULT 0,
	success_count   bigint NOT NULL DEFAULT 0,
	error_count     bigint NOT NULL DEFAULT 0,
	success_rate    numeric(5,2),
	error_rate      numeric(5,2),
	latency_p50     numeric(10,2),
	latency_p95     numeric(10,2),
	latency_p99     numeric(10,2),
	token_consumed  bigint NOT NULL DEFAULT 0,
	cost_usd        numeric(10,4) NOT NULL DEFAULT 0,
	created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX ops_dimension_stats_dim_time_idx
	ON ops_dimension_stats (dimension_type, dimension_value, timestamp DESC);
CREATE INDEX ops_dimension_stats_time_idx ON ops_dimension_stats (timestamp DESC);

CREATE TABLE ops_data_retention_config (
	id              serial PRIMARY KEY,
	table_name      varchar(100) NOT NULL UNIQUE,
	retention_days  integer NOT NULL CHECK (retention_days > 0),
	enabled         boolean NOT NULL DEFAULT true,
	last_cleanup_at timestamptz,
	created_at      timestamptz NOT NULL DEFAULT now(),
	updated_at      timestamptz NOT NULL DEFAULT now()
);
CREATE TRIGGER ops_data_retention_config_touch
	BEFORE UPDATE ON ops_data_retention_config
	FOR EACH ROW EXECUTE FUNCTION s2a_touch_updated_at();

-- Health score 0..100 from four signals:
--   availability (success_rate, %) 40 points: >= 99.9 -> 40, >= 99.5 -> 35,
--     >= 99.0 -> 30, >= 95 -> 20, else 10
--   errors (error_rate, %) 30 points: <= 0.1 -> 30, <= 0.5 -> 25,
--     <= 1.0 -> 20, <= 5.0 -> 10, else 5
--   latency (p99, ms) 20 points: <= 500 -> 20, <= 1000 -> 15, <= 3000 -> 10,
--     <= 5000 -> 5, else 0
--   resources (cpu, %) 10 points: <= 50 -> 10, <= 70 -> 7, <= 85 -> 5, else 2
-- A NULL input falls through to the lowest band of its signal (unknown is
-- not healthy).
CREATE OR REPLACE FUNCTION calculate_health_score(
	success_rate double precision,
	error_rate double precision,
	latency_p99 double precision,
	cpu_usage double precision)
RETURNS integer
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
	score integer := 0;
BEGIN
	IF success_rate >= 99.9 THEN score := score + 40;
	ELSIF success_rate >= 99.5 THEN score := score + 35;
	ELSIF success_rate >= 99.0 THEN score := score + 30;
	ELSIF success_rate >= 95.0 THEN score := score + 20;
	ELSE score := score + 10;
	END IF;

	IF error_rate <= 0.1 THEN score := score + 30;
	ELSIF error_rate <= 0.5 THEN score := score + 25;
	ELSIF error_rate <= 1.0 THEN score := score + 20;
	ELSIF error_rate <= 5.0 THEN score := score + 10;
	ELSE score := score + 5;
	END IF;

	IF latency_p99 <= 500 THEN score := score + 20;
	ELSIF latency_p99 <= 1000 THEN score := score + 15;
	ELSIF latency_p99 <= 3000 THEN score := score + 10;
	ELSIF latency_p99 <= 5000 THEN score := score + 5;
	END IF;

	IF cpu_usage <= 50 THEN score := score + 10;
	ELSIF cpu_usage <= 70 THEN score := score + 7;
	ELSIF cpu_usage <= 85 THEN score := score + 5;
	ELSE score := score + 2;
	END IF;

	RETURN score;
END;
$$;

-- The newest 1-minute metrics row with its health score.
CREATE VIEW ops_latest_metrics AS
SELECT m.*,
       calculate_health_score(m.success_rate, m.error_rate,
           m.p99_latency_ms, m.cpu_usage_percent) AS health_score
FROM ops_system_metrics m
WHERE m.window_minutes = 1
ORDER BY m.created_at DESC, m.id DESC
LIMIT 1;

-- Firing alert events with their rule and how long they have been firing.
CREATE VIEW ops_active_alerts AS
SELECT e.id,
       e.rule_id,
       r.name AS rule_name,
       r.metric_type,
       r.operator,
       e.severity,
       e.status,
       e.title,
       e.description,
       e.metric_value,
       e.threshold_value,
       e.fired_at,
       EXTRACT(EPOCH FROM (now() - e.fired_at))::bigint AS duration_seconds,
       e.email_sent,
       e.webhook_sent
FROM ops_alert_events e
JOIN ops_alert_rules r ON r.id = e.rule_id
WHERE e.status = 'firing';
