/* env_fuzz.c: the envelope decoder, then the body of whatever type it names. */
#include "proto_fuzz.h"

PROTO_FUZZ_TARGET(0)
