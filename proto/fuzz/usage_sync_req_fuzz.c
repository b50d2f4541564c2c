/* usage_sync_req_fuzz.c: the USAGE_SYNC_REQ decoder (see proto_fuzz.h). */
#include "proto_fuzz.h"

PROTO_FUZZ_TARGET(MSG_USAGE_SYNC_REQ)
