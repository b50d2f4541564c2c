/* config_changed_evt_fuzz.c: the CONFIG_CHANGED_EVT decoder (see proto_fuzz.h).
 */
#include "proto_fuzz.h"

PROTO_FUZZ_TARGET(MSG_CONFIG_CHANGED_EVT)
