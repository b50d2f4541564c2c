/* usage_batch_evt_fuzz.c: the USAGE_BATCH_EVT decoder (see proto_fuzz.h). */
#include "proto_fuzz.h"

PROTO_FUZZ_TARGET(MSG_USAGE_BATCH_EVT)
