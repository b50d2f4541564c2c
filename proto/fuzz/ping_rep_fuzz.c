/* ping_rep_fuzz.c: the PING_REP decoder (see proto_fuzz.h). */
#include "proto_fuzz.h"

PROTO_FUZZ_TARGET(MSG_PING_REP)
