/* sched_release_req_fuzz.c: the SCHED_RELEASE_REQ decoder (see proto_fuzz.h).
 */
#include "proto_fuzz.h"

PROTO_FUZZ_TARGET(MSG_SCHED_RELEASE_REQ)
