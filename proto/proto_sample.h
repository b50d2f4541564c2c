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

/*
 * The blobs of a message whose decoded struct borrows them from its input
 * (replay replies, sync requests, bundles, usage batches): msg's blob
 * array, its count in *n; NULL (and *n = 0) for other types.
 */
struct proto_blob *proto_sample_blobs(int type, void *msg, uint32_t *n);

/*
 * Whether two decoded messages of type are equal: byte for byte, except
 * that blobs are compared by their content, not by where they point.
 * Both must have been zeroed before decoding.
 */
bool proto_sample_same(int type, const void *a, const void *b);

#endif /* PROTO_SAMPLE_H */
