/* replay_rep_fuzz.c: the REPLAY_REP decoder (see proto_fuzz.h). */
#include "proto_fuzz.h"

PROTO_FUZZ_TARGET(MSG_REPLAY_REP)
