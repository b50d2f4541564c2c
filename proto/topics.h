/*
 * topics.h: pub/sub topic names and the default NNG addresses.
 *
 * A published message is the topic bytes, a NUL, then one proto envelope
 * (nngx_pub_send() frames it); subscribers filter on the topic prefix.
 * Default addresses are config defaults: ${state_dir} is expanded by cfg.
 */
#ifndef PROTO_TOPICS_H
#define PROTO_TOPICS_H

#define TOPIC_USAGE     "usage."   /* USAGE_EVT: gateway -> billing, opsmon */
#define TOPIC_ERROR     "error."   /* ERROR_EVT: gateway -> opsmon */
#define TOPIC_HEARTBEAT "hb."      /* STATUS_HEARTBEAT_EVT: any -> collectors */
#define TOPIC_METRICS   "metrics." /* METRICS_SNAPSHOT_EVT: opsmon -> alerter */
#define TOPIC_CONFIG    "cfg."     /* CONFIG_CHANGED_EVT: webui -> scheduler */

#define ADDR_SCHED           "ipc://${state_dir}/sched.ipc"
#define ADDR_SCHED_CFG       "ipc://${state_dir}/sched-cfg.ipc"
#define ADDR_BILLING_EVENTS  "ipc://${state_dir}/billing-events.ipc"
#define ADDR_OPSMON_EVENTS   "ipc://${state_dir}/opsmon-events.ipc"
#define ADDR_ALERTER_METRICS "ipc://${state_dir}/alerter-metrics.ipc"
#define ADDR_BILLING_SYNC    "ipc://${state_dir}/billing-sync.ipc"

#endif /* PROTO_TOPICS_H */
