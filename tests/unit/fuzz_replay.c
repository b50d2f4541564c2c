/*
 * fuzz_replay.c: runs a libFuzzer target over stored inputs without
 * libFuzzer, so the corpora serve as regression tests in every build
 * (plain, ASan+UBSan).
 *
 * Usage: replay_<target> DIR|FILE...  Each file is fed once to
 * LLVMFuzzerTestOneInput.  A crash or sanitizer report fails the run; the
 * closing line counts the inputs replayed.
 */
#include <sys/stat.h>

#include <dirent.h>
#include <stdio.h>

#include "compat.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define REPLAY_MAX (1u << 20)

static int
replay_file(const char *path)
{
	FILE    *f = fopen(path, "rb");
	uint8_t *data;
	size_t   n;

	if (f == NULL) {
		printf("  cannot open %s\n", path);
		return -1;
	}
	data = xmalloc(REPLAY_MAX);
	n = fread(data, 1, REPLAY_MAX, f);
	fclose(f);
	LLVMFuzzerTestOneInput(data, n);
	free(data);
	return 0;
}

static int
replay_path(const char *path, int *count)
{
	struct stat    st;
	DIR           *d;
	struct dirent *de;
	char           sub[4096];
	int            rv = 0;

	if (stat(path, &st) != 0) {
		printf("  missing %s\n", path);
		return -1;
	}
	if (!S_ISDIR(st.st_mode)) {
		if (replay_file(path) != 0)
			return -1;
		(*count)++;
		return 0;
	}
	d = opendir(path);
	if (d == NULL)
		return -1;
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		snprintf(sub, sizeof(sub), "%s/%s", path, de->d_name);
		if (replay_path(sub, count) != 0)
			rv = -1;
	}
	closedir(d);
	return rv;
}

int
main(int argc, char **argv)
{
	int count = 0, failed = 0, i;

	for (i = 1; i < argc; i++) {
		if (replay_path(argv[i], &count) != 0)
			failed++;
	}
	printf("replayed %d inputs\n", count);
	printf("%d passed, %d failed\n", count, failed);
	return failed == 0 && count > 0 ? 0 : 1;
}
