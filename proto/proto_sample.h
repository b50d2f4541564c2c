/*
 * proto_sample.h: sample messages for tests, fuzz corpora and tools.
 *
 * proto_sample_fill() gives every field of a message a non-trivial value
 * (negative and 64-bit integers, UTF-8 text, full arrays) that varies with
 * seed, so a round trip that drops or swaps a field shows.  Not used by
 * the services themselves.
 */
#ifndef PROTO_SAMPLE_H
#define PROTO_SAMPLE_H

#include "proto.h"

/*
 * Zeroes and fills msg, which must point at the struct of type.  Replay
 * reply blobs point at static storage.  Returns false for an unknown type.
 */
bool proto_sample_fill(int type, void *msg, unsigned seed);

#endif /* PROTO_SAMPLE_H */
