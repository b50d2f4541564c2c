/* sched_keyinfo_rep_fuzz.c: the SCHED_KEYINFO_REP decoder (see proto_fuzz.h).
 */
#include "proto_fuzz.h"

PROTO_FUZZ_TARGET(MSG_SCHED_KEYINFO_REP)
