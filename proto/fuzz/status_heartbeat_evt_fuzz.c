/* status_heartbeat_evt_fuzz.c: the STATUS_HEARTBEAT_EVT decoder (see
 * proto_fuzz.h). */
#include "proto_fuzz.h"

PROTO_FUZZ_TARGET(MSG_STATUS_HEARTBEAT_EVT)
