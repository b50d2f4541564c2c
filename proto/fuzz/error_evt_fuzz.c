/* error_evt_fuzz.c: the ERROR_EVT decoder (see proto_fuzz.h). */
#include "proto_fuzz.h"

PROTO_FUZZ_TARGET(MSG_ERROR_EVT)
