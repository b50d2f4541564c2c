/* replay_req_fuzz.c: the REPLAY_REQ decoder (see proto_fuzz.h). */
#include "proto_fuzz.h"

PROTO_FUZZ_TARGET(MSG_REPLAY_REQ)
