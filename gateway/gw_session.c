/*
 * gw_session.c: the sticky-session key of a request (see gw_session.h).
 *
 * Each rule walks the parsed JSON through one feed: a dry run (no digest)
 * that stops at the first byte and only says whether the rule has a
 * source, then, for the rule that does, a real run after the prefix.
 * The feed counts bytes and stops hashing at GW_SESSION_HASH_CAP, so a
 * huge system prompt costs no more than 64 KiB of SHA-256.
 */
#include "gw_session.h"

#include <openssl/evp.h>
#include <string.h>

#include "crypto.h"
#include "err.h"

/* A digest being fed; md NULL is a dry run. */
struct gw_session_feed {
	EVP_MD_CTX *md;
	size_t      n; /* bytes of the source seen, at most the cap */
};

/* True once feeding more changes nothing. */
static bool
gw_session_done(const struct gw_session_feed *f)
{
	return f->n >= GW_SESSION_HASH_CAP || (f->md == NULL && f->n > 0);
}

static void
gw_session_add(struct gw_session_feed *f, const char *p, size_t len)
{
	if (len > GW_SESSION_HASH_CAP - f->n)
		len = GW_SESSION_HASH_CAP - f->n;
	if (len == 0)
		return;
	if (f->md != NULL && EVP_DigestUpdate(f->md, p, len) != 1)
		BUG("EVP_DigestUpdate failed");
	f->n += len;
}

static void
gw_session_add_str(struct gw_session_feed *f, const json_t *s)
{
	if (json_is_string(s))
		gw_session_add(f, json_string_value(s), json_string_length(s));
}

static bool
gw_session_ephemeral(const json_t *block)
{
	const json_t *cc = json_object_get(block, "cache_control");
	const json_t *t = json_object_get(cc, "type");

	return json_is_string(t) &&
	    strcmp(json_string_value(t), "ephemeral") == 0;
}

/*
 * The text of a content value: a string, or the "text" of its text
 * blocks in order.  With eph_only, only blocks marked ephemeral count.
 */
static void
gw_session_text(struct gw_session_feed *f, const json_t *v, bool eph_only)
{
	const json_t *b;
	size_t        i;

	if (json_is_string(v)) {
		if (!eph_only)
			gw_session_add_str(f, v);
		return;
	}
	json_array_foreach(v, i, b)
	{
		const json_t *type = json_object_get(b, "type");

		if (gw_session_done(f))
			return;
		if (!json_is_string(type) ||
		    strcmp(json_string_value(type), "text") != 0)
			continue;
		if (eph_only && !gw_session_ephemeral(b))
			continue;
		gw_session_add_str(f, json_object_get(b, "text"));
	}
}

/* The first message holding an ephemeral content part, or NULL. */
static const json_t *
gw_session_eph_message(const json_t *root)
{
	const json_t *m, *part;
	size_t        i, j;

	json_array_foreach(json_object_get(root, "messages"), i, m)
	{
		json_array_foreach(json_object_get(m, "content"), j, part)
		{
			if (gw_session_ephemeral(part))
				return m;
		}
	}
	return NULL;
}

enum gw_session_rule {
	GW_SESS_EPH,
	GW_SESS_SYS,
	GW_SESS_MSG,
};

/* Feeds the source of a body rule (without its prefix). */
static void
gw_session_walk(
    struct gw_session_feed *f, const json_t *root, enum gw_session_rule r)
{
	const json_t *m;

	switch (r) {
	case GW_SESS_EPH:
		gw_session_text(f, json_object_get(root, "system"), true);
		if (f->n > 0)
			return;
		m = gw_session_eph_message(root);
		if (m != NULL)
			gw_session_text(
			    f, json_object_get(m, "content"), false);
		return;
	case GW_SESS_SYS:
		gw_session_text(f, json_object_get(root, "system"), false);
		return;
	case GW_SESS_MSG:
		m = json_array_get(json_object_get(root, "messages"), 0);
		gw_session_text(f, json_object_get(m, "content"), false);
		return;
	}
	BUG("unknown session rule %d", (int)r);
}

static const char *const gw_session_prefix[] = {
    [GW_SESS_EPH] = "eph:",
    [GW_SESS_SYS] = "sys:",
    [GW_SESS_MSG] = "msg:",
};

/* out = hex of the first 16 bytes of SHA-256(prefix || source). */
static void
gw_session_finish(EVP_MD_CTX *md, char out[GW_SESSION_HASH_LEN + 1])
{
	static const char hexd[] = "0123456789abcdef";
	unsigned char     h[EVP_MAX_MD_SIZE];
	unsigned int      hl = 0;
	size_t            i;

	if (EVP_DigestFinal_ex(md, h, &hl) != 1 || hl != CRYPTO_SHA256_LEN)
		BUG("EVP_DigestFinal_ex failed");
	for (i = 0; i < GW_SESSION_HASH_LEN / 2; i++) {
		out[2 * i] = hexd[h[i] >> 4];
		out[2 * i + 1] = hexd[h[i] & 15];
	}
	out[GW_SESSION_HASH_LEN] = '\0';
}

static EVP_MD_CTX *
gw_session_begin(const char *prefix)
{
	EVP_MD_CTX *md = EVP_MD_CTX_new();

	if (md == NULL)
		BUG("EVP_MD_CTX_new failed");
	if (EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1 ||
	    EVP_DigestUpdate(md, prefix, strlen(prefix)) != 1)
		BUG("EVP_DigestInit_ex failed");
	return md;
}

/* Hashes prefix || (p, len), len capped; true when len > 0. */
static bool
gw_session_str(const char *prefix, const char *p, size_t len,
    char out[GW_SESSION_HASH_LEN + 1])
{
	struct gw_session_feed f = {0};

	if (p == NULL || len == 0)
		return false;
	f.md = gw_session_begin(prefix);
	gw_session_add(&f, p, len);
	gw_session_finish(f.md, out);
	EVP_MD_CTX_free(f.md);
	return true;
}

int
gw_session_hash(const struct gw_anth_req *req, const char *cc_session_header,
    char out[GW_SESSION_HASH_LEN + 1])
{
	struct gw_session_feed f;
	const char            *sess = req->session;
	size_t                 r;

	if (req->uid_form == GW_ANTH_UID_JSON &&
	    gw_session_str("cc:", sess, strlen(sess), out))
		return 0;
	if (cc_session_header != NULL &&
	    gw_session_str(
	        "hdr:", cc_session_header, strlen(cc_session_header), out))
		return 0;
	if (req->uid_form == GW_ANTH_UID_LEGACY &&
	    gw_session_str("legacy:", sess, strlen(sess), out))
		return 0;
	if (req->root == NULL)
		return -ERR_NOTFOUND;
	for (r = 0; r < ARRAY_SIZE(gw_session_prefix); r++) {
		memset(&f, 0, sizeof(f));
		gw_session_walk(&f, req->root, (enum gw_session_rule)r);
		if (f.n == 0)
			continue;
		memset(&f, 0, sizeof(f));
		f.md = gw_session_begin(gw_session_prefix[r]);
		gw_session_walk(&f, req->root, (enum gw_session_rule)r);
		gw_session_finish(f.md, out);
		EVP_MD_CTX_free(f.md);
		return 0;
	}
	return -ERR_NOTFOUND;
}
