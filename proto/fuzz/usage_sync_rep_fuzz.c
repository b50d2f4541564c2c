/* usage_sync_rep_fuzz.c: the USAGE_SYNC_REP decoder (see proto_fuzz.h). */
#include "proto_fuzz.h"

PROTO_FUZZ_TARGET(MSG_USAGE_SYNC_REP)
