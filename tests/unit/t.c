/*
 * t.c: runner of the unit-test harness (see t.h).
 *
 * Options: a case name as argument runs only that case.  The environment
 * variable T_VERBOSE=0 hides the per-case "ok" lines.
 */
#include "t.h"

#include <stdarg.h>
#include <stdlib.h>

jmp_buf t_jmp;

static int t_skipped_flag;

void
t_fail(const char *file, int line, const char *fmt, ...)
{
	va_list ap;

	fprintf(stdout, "  FAIL %s:%d: ", file, line);
	va_start(ap, fmt);
	vfprintf(stdout, fmt, ap);
	va_end(ap);
	fputc('\n', stdout);
	fflush(stdout);
	longjmp(t_jmp, 1);
}

void
t_skip(const char *why)
{
	fprintf(stdout, "  SKIP: %s\n", why);
	fflush(stdout);
	t_skipped_flag = 1;
	longjmp(t_jmp, 2);
}

int
t_run(const struct t_case *cases, size_t n, int argc, char **argv)
{
	const char   *v = getenv("T_VERBOSE");
	int           verbose = v == NULL || strcmp(v, "0") != 0;
	static int    passed, failed, skipped;
	static size_t i;

	setvbuf(stdout, NULL, _IOLBF, 0);
	passed = failed = skipped = 0;
	for (i = 0; i < n; i++) {
		volatile int rc;

		if (argc > 1 && strcmp(argv[1], cases[i].name) != 0)
			continue;
		t_skipped_flag = 0;
		rc = setjmp(t_jmp);
		if (rc == 0) {
			cases[i].fn();
			passed++;
			if (verbose)
				printf("ok   %s\n", cases[i].name);
		} else if (rc == 2) {
			skipped++;
			printf("skip %s\n", cases[i].name);
		} else {
			failed++;
			printf("FAIL %s\n", cases[i].name);
		}
	}
	if (skipped != 0)
		printf("%d passed, %d failed, %d skipped\n", passed, failed,
		    skipped);
	else
		printf("%d passed, %d failed\n", passed, failed);
	return failed == 0 ? 0 : 1;
}
