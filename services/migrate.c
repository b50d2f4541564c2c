/*
 * migrate.c: the migrator of migrate.h.
 *
 * Order of a run: read and checksum every file of the directory (bounded
 * in count and size), take the advisory lock, make sure schema_migrations
 * exists, compare the recorded history with the files, then apply what is
 * pending one file per transaction, and finally drop the lock.
 */
#include "migrate.h"

#include <sys/stat.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <unistd.h>

#include "err.h"
#include "log.h"
#include "pg.h"

struct migrate_file {
	char  name[MIGRATE_NAME_MAX + 1];
	char  sum[CRYPTO_SHA256_HEX_LEN + 1];
	char *sql; /* owned, NUL-terminated */
	bool  recorded;
};

static void PRINTF_LIKE(2, 3)
    migrate_msg(struct migrate_report *rep, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(rep->msg, sizeof(rep->msg), fmt, ap);
	va_end(ap);
}

static bool
migrate_name_ok(const char *n)
{
	size_t len = strlen(n), i;

	if (len < 5 || len > MIGRATE_NAME_MAX || n[0] == '.' ||
	    strcmp(n + len - 4, ".sql") != 0)
		return false;
	for (i = 0; i < len; i++) {
		char c = n[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		        (c >= '0' && c <= '9') || c == '_' || c == '-' ||
		        c == '.'))
			return false;
	}
	return true;
}

static int
migrate_cmp(const void *a, const void *b)
{
	return strcmp(((const struct migrate_file *)a)->name,
	    ((const struct migrate_file *)b)->name);
}

/* Reads dir/name whole into f->sql, refusing oversized or binary files. */
static int
migrate_read(
    const char *dir, struct migrate_file *f, struct migrate_report *rep)
{
	char        path[4096];
	struct stat st;
	size_t      got = 0;
	ssize_t     n;
	int         fd, rv = 0;

	snprintf(path, sizeof(path), "%s/%s", dir, f->name);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) != 0) {
		migrate_msg(rep, "cannot read %s: %s", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -ERR_IO;
	}
	if (st.st_size > MIGRATE_FILE_MAX) {
		migrate_msg(rep, "%s is larger than %d bytes", f->name,
		    MIGRATE_FILE_MAX);
		close(fd);
		return -ERR_TOOBIG;
	}
	f->sql = xmalloc((size_t)st.st_size + 1);
	while (got < (size_t)st.st_size) {
		n = read(fd, f->sql + got, (size_t)st.st_size - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			migrate_msg(rep, "short read on %s", f->name);
			rv = -ERR_IO;
			break;
		}
		got += (size_t)n;
	}
	close(fd);
	if (rv != 0)
		return rv;
	f->sql[got] = '\0';
	if (strlen(f->sql) != got) {
		migrate_msg(rep, "%s contains a NUL byte", f->name);
		return -ERR_INVAL;
	}
	crypto_sha256_hex(f->sql, got, f->sum);
	return 0;
}

/* Lists and reads the *.sql files of dir, sorted by name. */
static int
migrate_scan(const char *dir, struct migrate_file **out, int *nout,
    struct migrate_report *rep)
{
	struct migrate_file *files = NULL;
	struct dirent       *de;
	DIR                 *d;
	int                  n = 0, i, rv = 0;

	d = opendir(dir);
	if (d == NULL) {
		migrate_msg(rep, "cannot open migrations directory %s: %s", dir,
		    strerror(errno));
		return -ERR_IO;
	}
	while ((de = readdir(d)) != NULL) {
		size_t len = strlen(de->d_name);

		if (len < 4 || strcmp(de->d_name + len - 4, ".sql") != 0 ||
		    de->d_name[0] == '.')
			continue;
		if (!migrate_name_ok(de->d_name)) {
			migrate_msg(
			    rep, "bad migration file name %s", de->d_name);
			rv = -ERR_INVAL;
			break;
		}
		if (n >= MIGRATE_MAX_FILES) {
			migrate_msg(rep, "more than %d migration files",
			    MIGRATE_MAX_FILES);
			rv = -ERR_TOOBIG;
			break;
		}
		files = xrealloc(files, (size_t)(n + 1) * sizeof(*files));
		memset(&files[n], 0, sizeof(files[n]));
		/* migrate_name_ok() bounded the length. */
		memcpy(files[n].name, de->d_name, len + 1);
		n++;
	}
	closedir(d);
	if (rv == 0 && n > 0)
		qsort(files, (size_t)n, sizeof(*files), migrate_cmp);
	for (i = 0; rv == 0 && i < n; i++) {
		rv = migrate_read(dir, &files[i], rep);
		if (rv != 0)
			snprintf(
			    rep->file, sizeof(rep->file), "%s", files[i].name);
	}
	if (rv != 0) {
		for (i = 0; i < n; i++)
			free(files[i].sql);
		free(files);
		return rv;
	}
	*out = files;
	*nout = n;
	return 0;
}

static struct migrate_file *
migrate_find(struct migrate_file *files, int n, const char *name)
{
	int i;

	for (i = 0; i < n; i++) {
		if (strcmp(files[i].name, name) == 0)
			return &files[i];
	}
	return NULL;
}

/* Compares schema_migrations with the files; marks the recorded ones. */
static int
migrate_check_history(struct pg_conn *c, struct migrate_file *files, int n,
    struct migrate_report *rep)
{
	PGresult *res;
	int       i, rv;

	rv = pg_exec(c,
	    "SELECT filename, checksum FROM schema_migrations ORDER BY filename",
	    0, NULL, &res);
	if (rv != 0) {
		migrate_msg(rep, "reading schema_migrations: %s", pg_errmsg(c));
		return rv;
	}
	for (i = 0; i < PQntuples(res); i++) {
		const char          *name = PQgetvalue(res, i, 0);
		const char          *sum = PQgetvalue(res, i, 1);
		struct migrate_file *f = migrate_find(files, n, name);

		snprintf(rep->file, sizeof(rep->file), "%s", name);
		snprintf(rep->recorded, sizeof(rep->recorded), "%s", sum);
		if (f == NULL) {
			migrate_msg(rep,
			    "migration %s was applied but its file is missing",
			    name);
			rv = -ERR_CONFLICT;
			break;
		}
		if (strcmp(f->sum, sum) != 0) {
			snprintf(
			    rep->actual, sizeof(rep->actual), "%s", f->sum);
			migrate_msg(rep,
			    "migration %s changed after it was applied "
			    "(recorded checksum %s, file checksum %s); "
			    "applied migrations must not be edited, add a new "
			    "one",
			    name, sum, f->sum);
			rv = -ERR_CONFLICT;
			break;
		}
		f->recorded = true;
	}
	PQclear(res);
	if (rv == 0) {
		rep->file[0] = '\0';
		rep->recorded[0] = '\0';
	}
	return rv;
}

static int
migrate_apply(
    struct pg_conn *c, struct migrate_file *f, struct migrate_report *rep)
{
	const char *p[2] = {f->name, f->sum};
	int         rv;

	rv = pg_begin(c);
	if (rv == 0)
		rv = pg_exec_script(c, f->sql);
	if (rv == 0)
		rv = pg_exec(c,
		    "INSERT INTO schema_migrations (filename, checksum) "
		    "VALUES ($1, $2)",
		    2, p, NULL);
	if (rv == 0)
		rv = pg_commit(c);
	if (rv != 0) {
		snprintf(rep->file, sizeof(rep->file), "%s", f->name);
		migrate_msg(
		    rep, "migration %s failed: %s", f->name, pg_errmsg(c));
		pg_rollback(c);
		return rv;
	}
	log_info("migrate.applied", LOG_STR("file", f->name),
	    LOG_STR("checksum", f->sum));
	return 0;
}

int
migrate_run(struct pg_conn *c, const char *dir, struct migrate_report *rep)
{
	const char          *lock[1] = {MIGRATE_LOCK_ID};
	struct migrate_file *files = NULL;
	int                  n = 0, i, rv;

	memset(rep, 0, sizeof(*rep));
	rv = migrate_scan(dir, &files, &n, rep);
	if (rv != 0)
		return rv;
	rep->total = n;
	rv = pg_exec(c, "SELECT pg_advisory_lock($1::bigint)", 1, lock, NULL);
	if (rv != 0) {
		migrate_msg(rep, "taking the migration lock: %s", pg_errmsg(c));
		goto out;
	}
	rv = pg_exec(c,
	    "CREATE TABLE IF NOT EXISTS schema_migrations ("
	    " filename text PRIMARY KEY,"
	    " checksum text NOT NULL,"
	    " applied_at timestamptz NOT NULL DEFAULT now())",
	    0, NULL, NULL);
	if (rv != 0)
		migrate_msg(
		    rep, "creating schema_migrations: %s", pg_errmsg(c));
	if (rv == 0)
		rv = migrate_check_history(c, files, n, rep);
	for (i = 0; rv == 0 && i < n; i++) {
		if (files[i].recorded)
			continue;
		rv = migrate_apply(c, &files[i], rep);
		if (rv == 0)
			rep->applied++;
	}
	if (pg_exec(
	        c, "SELECT pg_advisory_unlock($1::bigint)", 1, lock, NULL) != 0)
		log_warn("migrate.unlock_failed", LOG_STR("msg", pg_errmsg(c)));
out:
	if (rv != 0)
		log_error("migrate.failed", LOG_ERR(rv),
		    LOG_STR("file", rep->file), LOG_STR("msg", rep->msg));
	for (i = 0; i < n; i++)
		free(files[i].sql);
	free(files);
	return rv;
}
