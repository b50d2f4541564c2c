/* error_rep_fuzz.c: the ERROR_REP decoder (see proto_fuzz.h). */
#include "proto_fuzz.h"

PROTO_FUZZ_TARGET(MSG_ERROR_REP)
