/*
 * main.c: sub2apictl entry point: global options, the command table and
 * the exit status (0 ok, 1 database or runtime failure, 2 bad input).
 */
#include <sys/stat.h>

#include <libgen.h>
#include <stdio.h>
#include <unistd.h>

#include "ctl.h"
#include "err.h"
#include "log.h"

static const char ctl_usage[] =
    "usage: sub2apictl [--db DSN] [--json] [--migrations DIR] COMMAND ...\n"
    "\n"
    "Global options (anywhere on the line):\n"
    "  --db DSN          PostgreSQL DSN (default $SUB2API_DATABASE_URL)\n"
    "  --json            machine-readable JSON on stdout\n"
    "  --migrations DIR  migrations directory (default $SUB2API_MIGRATIONS_DIR,\n"
    "                    else ./migrations, else <bin>/../../migrations)\n"
    "  -v, --verbose     log debug events on stderr\n"
    "  -h, --help        this text\n"
    "\n"
    "Commands:\n"
    "  migrate\n"
    "  user add --email E [--password P] [--role admin|user] [--balance N]\n"
    "           [--concurrency N] [--username NAME]\n"
    "  user list\n"
    "  group add --name N [--platform anthropic|openai|gemini|antigravity]\n"
    "           [--multiplier 1.0] [--subscription] [--exclusive] [--fail-fast]\n"
    "           [--description D] [--daily-limit N] [--weekly-limit N]\n"
    "           [--monthly-limit N]\n"
    "  group list\n"
    "  key add --user EMAIL|ID [--group NAME|ID] [--name N]\n"
    "  key list\n"
    "  account add --name N --platform P --type oauth|setup-token|apikey\n"
    "           --credentials JSON|@file [--base-url U] [--concurrency N]\n"
    "           [--priority N] [--group NAME|ID ...] [--proxy NAME|ID]\n"
    "           (needs SUB2API_SECRET_KEY: 64 hex chars or base64 of 32 bytes)\n"
    "  account list\n"
    "  account set-proxy --account NAME|ID (--proxy NAME|ID | --none)\n"
    "  proxy add --name N --protocol http|https|socks5 --host H --port P\n"
    "           [--username U] [--password PW|@file]\n"
    "           (a password needs SUB2API_SECRET_KEY; it is never printed)\n"
    "  proxy list\n"
    "  balance set|add --user EMAIL|ID --amount DECIMAL [--note TEXT]\n"
    "  setting set --key K --value V|@file   (publishes nothing: services\n"
    "           reload settings periodically)\n"
    "  setting unset --key K\n"
    "  setting list\n"
    "  rate set --user EMAIL|ID --group NAME|ID --multiplier N\n"
    "           (the user's own multiplier in the group, instead of the\n"
    "           group's)\n"
    "  rate unset --user EMAIL|ID --group NAME|ID\n"
    "  rate list\n"
    "\n"
    "Exit status: 0 success, 1 database or runtime error, 2 bad input.\n";

struct ctl_cmd {
	const char *word1, *word2;
	int (*fn)(struct ctl *c, int argc, char **argv);
};

static int
ctl_balance_set(struct ctl *c, int argc, char **argv)
{
	return ctl_cmd_balance(c, true, argc, argv);
}

static int
ctl_balance_add(struct ctl *c, int argc, char **argv)
{
	return ctl_cmd_balance(c, false, argc, argv);
}

static const struct ctl_cmd ctl_cmds[] = {
    {"migrate", NULL, ctl_cmd_migrate},
    {"user", "add", ctl_cmd_user_add},
    {"user", "list", ctl_cmd_user_list},
    {"group", "add", ctl_cmd_group_add},
    {"group", "list", ctl_cmd_group_list},
    {"key", "add", ctl_cmd_key_add},
    {"key", "list", ctl_cmd_key_list},
    {"account", "add", ctl_cmd_account_add},
    {"account", "list", ctl_cmd_account_list},
    {"account", "set-proxy", ctl_cmd_account_set_proxy},
    {"proxy", "add", ctl_cmd_proxy_add},
    {"proxy", "list", ctl_cmd_proxy_list},
    {"balance", "set", ctl_balance_set},
    {"balance", "add", ctl_balance_add},
    {"setting", "set", ctl_cmd_setting_set},
    {"setting", "unset", ctl_cmd_setting_unset},
    {"setting", "list", ctl_cmd_setting_list},
    {"rate", "set", ctl_cmd_rate_set},
    {"rate", "unset", ctl_cmd_rate_unset},
    {"rate", "list", ctl_cmd_rate_list},
};

static bool
ctl_is_dir(const char *p)
{
	struct stat st;

	return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

/* Default migrations directory; returns an owned string or NULL. */
static char *
ctl_default_migrations(void)
{
	const char *env = getenv("SUB2API_MIGRATIONS_DIR");
	char        exe[4096], path[4200];
	ssize_t     n;

	if (env != NULL && *env != '\0')
		return xstrdup(env);
	if (ctl_is_dir("migrations"))
		return xstrdup("migrations");
	n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n <= 0)
		return xstrdup("migrations");
	exe[n] = '\0';
	snprintf(path, sizeof(path), "%s/../../migrations", dirname(exe));
	return xstrdup(path);
}

int
main(int argc, char **argv)
{
	struct ctl            c = {0};
	const struct ctl_cmd *cmd = NULL;
	char                **rest, *migr_owned = NULL;
	int                   nrest = 0, i, rv, used;
	bool                  verbose = false, help = false;

	log_init("sub2apictl", LOG_ERROR);
	c.dsn = getenv("SUB2API_DATABASE_URL");
	rest = xcalloc((size_t)argc + 1, sizeof(*rest));
	for (i = 1; i < argc; i++) {
		const char *a = argv[i];

		if (strcmp(a, "--json") == 0) {
			c.json = true;
		} else if (strcmp(a, "-v") == 0 ||
		    strcmp(a, "--verbose") == 0) {
			verbose = true;
		} else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
			help = true;
		} else if (strcmp(a, "--db") == 0 ||
		    strcmp(a, "--migrations") == 0) {
			if (i + 1 >= argc) {
				ctl_err("option %s needs a value", a);
				free(rest);
				return 2;
			}
			if (a[2] == 'd')
				c.dsn = argv[++i];
			else
				c.migrations = argv[++i];
		} else if (strncmp(a, "--db=", 5) == 0) {
			c.dsn = a + 5;
		} else if (strncmp(a, "--migrations=", 13) == 0) {
			c.migrations = a + 13;
		} else {
			rest[nrest++] = argv[i];
		}
	}
	if (help) {
		fputs(ctl_usage, stdout);
		free(rest);
		return 0;
	}
	if (verbose)
		log_set_level(LOG_DEBUG);
	for (i = 0; i < (int)ARRAY_SIZE(ctl_cmds) && nrest > 0; i++) {
		if (strcmp(ctl_cmds[i].word1, rest[0]) != 0)
			continue;
		if (ctl_cmds[i].word2 == NULL ||
		    (nrest > 1 && strcmp(ctl_cmds[i].word2, rest[1]) == 0)) {
			cmd = &ctl_cmds[i];
			break;
		}
	}
	if (cmd == NULL) {
		if (nrest == 0)
			ctl_err("no command given (see sub2apictl --help)");
		else
			ctl_err(
			    "unknown command '%s%s%s' (see sub2apictl --help)",
			    rest[0], nrest > 1 ? " " : "",
			    nrest > 1 ? rest[1] : "");
		free(rest);
		return 2;
	}
	if (c.migrations == NULL) {
		migr_owned = ctl_default_migrations();
		c.migrations = migr_owned;
	}
	used = cmd->word2 == NULL ? 1 : 2;
	rv = cmd->fn(&c, nrest - used, rest + used);
	ctl_db_close(&c);
	free(migr_owned);
	free(rest);
	return ctl_exit_code(rv);
}
