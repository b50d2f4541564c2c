/*
 * gen_corpus.c: writes the seed corpora of the proto fuzz targets.
 *
 * For every message it writes a few packed envelopes and bare bodies of
 * sample messages (proto_sample.c) into tests/fuzz/<sname>_fuzz/, and one
 * envelope of each type into tests/fuzz/env_fuzz/.  Not built by the
 * Makefile; after changing a message, from the repository root:
 *
 *   make build/lib/libproto.a build/lib/libsvc.a
 *   cc -std=c11 -D_GNU_SOURCE -Iservices -Iproto tests/fuzz/gen_corpus.c \
 *       build/lib/libproto.a build/lib/libsvc.a -lnng -lmsgpackc \
 *       -lpthread -lm -o build/gen_corpus
 *   build/gen_corpus tests/fuzz
 */
#include <sys/stat.h>

#include <errno.h>
#include <stdio.h>

#include "err.h"
#include "proto.h"
#include "proto_sample.h"

#define GEN_SEEDS 3

struct gen_type {
	int         type;
	const char *sname;
};

static const struct gen_type gen_types[] = {
#define MSG(name, id, sname) {MSG_##name, #sname},
#include "proto.def"
#undef MSG
};

static void
gen_write(const char *dir, const char *name, const struct buf *b)
{
	char  path[4096];
	FILE *f;

	if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
		perror(dir);
		exit(1);
	}
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "wb");
	if (f == NULL || fwrite(b->data, 1, b->len, f) != b->len ||
	    fclose(f) != 0) {
		perror(path);
		exit(1);
	}
}

int
main(int argc, char **argv)
{
	char       dir[4096], envdir[4096], name[64];
	void      *msg = xcalloc(1, 256 * 1024);
	struct buf b;
	size_t     i;
	unsigned   s;

	if (argc != 2) {
		fprintf(stderr, "usage: gen_corpus tests/fuzz\n");
		return 2;
	}
	buf_init(&b, PROTO_MAX_MSG + 1);
	snprintf(envdir, sizeof(envdir), "%s/env_fuzz", argv[1]);
	for (i = 0; i < ARRAY_SIZE(gen_types); i++) {
		snprintf(dir, sizeof(dir), "%s/%s_fuzz", argv[1],
		    gen_types[i].sname);
		for (s = 0; s < GEN_SEEDS; s++) {
			if (!proto_sample_fill(gen_types[i].type, msg, s))
				return 1;
			buf_reset(&b);
			if (proto_pack(&b, gen_types[i].type, "req-1",
			        1764160000000 + s, msg) != 0)
				return 1;
			snprintf(name, sizeof(name), "env-%u", s);
			gen_write(dir, name, &b);
			if (s == 0) {
				snprintf(name, sizeof(name), "%s",
				    gen_types[i].sname);
				gen_write(envdir, name, &b);
			}
			buf_reset(&b);
			if (proto_body_pack(&b, gen_types[i].type, msg) != 0)
				return 1;
			snprintf(name, sizeof(name), "body-%u", s);
			gen_write(dir, name, &b);
		}
	}
	buf_reset(&b);
	if (proto_reply_error(&b, "req-2", -ERR_BUSY, "try later") != 0)
		return 1;
	gen_write(envdir, "reply_error", &b);
	buf_release(&b);
	free(msg);
	printf("corpora written under %s\n", argv[1]);
	return 0;
}
