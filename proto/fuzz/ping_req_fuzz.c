/* ping_req_fuzz.c: the PING_REQ decoder (see proto_fuzz.h). */
#include "proto_fuzz.h"

PROTO_FUZZ_TARGET(MSG_PING_REQ)
