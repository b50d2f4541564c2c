/* sched_bundle_req_fuzz.c: the SCHED_BUNDLE_REQ decoder (see proto_fuzz.h). */
#include "proto_fuzz.h"

PROTO_FUZZ_TARGET(MSG_SCHED_BUNDLE_REQ)
