/* metrics_snapshot_evt_fuzz.c: the METRICS_SNAPSHOT_EVT decoder (see
 * proto_fuzz.h). */
#include "proto_fuzz.h"

PROTO_FUZZ_TARGET(MSG_METRICS_SNAPSHOT_EVT)
