/*
 * migrate.h: the forward-only schema migrator.
 *
 * A migration is a file NNNN_<name>.sql in one directory; files run in
 * byte order of their names, each in its own transaction together with
 * its row in schema_migrations(filename, checksum, applied_at).  The
 * checksum is the sha256 hex of the file's exact bytes.  The whole run
 * holds a PostgreSQL session advisory lock (MIGRATE_LOCK_ID), so several
 * services starting at once migrate one at a time.
 *
 * Before applying anything the run checks history: a recorded file whose
 * checksum differs from the file on disk, or a recorded file that is gone,
 * refuses the whole run with -ERR_CONFLICT (an applied migration must never
 * change; write a new one).  Nothing is applied in that case.
 *
 * Files must not contain BEGIN/COMMIT themselves.
 */
#ifndef MIGRATE_H
#define MIGRATE_H

#include "compat.h"
#include "crypto.h"

struct pg_conn;

#define MIGRATE_LOCK_ID   "8300803910934292338" /* "s2a-migr" as int64 */
#define MIGRATE_MAX_FILES 1000
#define MIGRATE_FILE_MAX  (4 << 20) /* bytes per file */
#define MIGRATE_NAME_MAX  200

struct migrate_report {
	int applied; /* files applied by this run */
	int total;   /* files found in the directory */
	/* On failure: the file concerned and a one-line reason. */
	char file[MIGRATE_NAME_MAX + 1];
	char recorded[CRYPTO_SHA256_HEX_LEN + 1]; /* checksum in the DB */
	char actual[CRYPTO_SHA256_HEX_LEN + 1];   /* checksum on disk */
	char msg[512];
};

/*
 * Applies the pending migrations of dir (borrowed) over conn (borrowed,
 * acquired by the caller, not inside a transaction).  rep (borrowed, always
 * filled) tells how many were applied and, on failure, why.  Returns 0
 * (also when up to date: rep->applied == 0), -ERR_CONFLICT on checksum
 * mismatch or a missing file, -ERR_IO/-ERR_TOOBIG/-ERR_INVAL for an
 * unreadable directory, oversized file or bad name, or the database error
 * of the failing file (whose transaction was rolled back; earlier files
 * stay applied).
 */
int migrate_run(struct pg_conn *conn, const char *dir,
    struct migrate_report *rep) WARN_UNUSED;

#endif /* MIGRATE_H */
