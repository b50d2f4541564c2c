/*
 * crypto.c: SHA-256, randomness, codecs, AES-256-GCM sealing and scrypt
 * password hashing on top of OpenSSL 3's EVP interfaces.
 *
 * Secrets that pass through here (keys, derived hashes, plaintexts) are
 * wiped with OPENSSL_cleanse before their memory is released.
 */
#include "crypto.h"

#include <ctype.h>
#include <inttypes.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>

#include "err.h"

#define CRYPTO_SALT_LEN    16
#define CRYPTO_DK_LEN      32
#define CRYPTO_DK_MIN      16
#define CRYPTO_DK_MAX      64
#define CRYPTO_SCRYPT_NMAX (1u << 20)

void
crypto_sha256(const void *p, size_t len, uint8_t out[CRYPTO_SHA256_LEN])
{
	unsigned int n = 0;

	if (EVP_Digest(p, len, out, &n, EVP_sha256(), NULL) != 1 ||
	    n != CRYPTO_SHA256_LEN)
		BUG("EVP_Digest sha256 failed");
}

void
crypto_sha256_hex(
    const void *p, size_t len, char out[CRYPTO_SHA256_HEX_LEN + 1])
{
	uint8_t md[CRYPTO_SHA256_LEN];

	crypto_sha256(p, len, md);
	if (crypto_hex_encode(md, sizeof(md), out, CRYPTO_SHA256_HEX_LEN + 1) !=
	    0)
		BUG("sha256 hex does not fit");
}

int
crypto_random(void *out, size_t len)
{
	if (len > INT32_MAX)
		return -ERR_TOOBIG;
	if (len == 0)
		return 0;
	if (RAND_bytes(out, (int)len) != 1)
		return -ERR_CRYPTO;
	return 0;
}

int
crypto_hex_encode(const void *p, size_t len, char *out, size_t cap)
{
	static const char digits[] = "0123456789abcdef";
	const uint8_t    *b = p;
	size_t            i;

	if (len > (SIZE_MAX - 1) / 2 || cap < 2 * len + 1)
		return -ERR_TOOBIG;
	for (i = 0; i < len; i++) {
		out[2 * i] = digits[b[i] >> 4];
		out[2 * i + 1] = digits[b[i] & 0xf];
	}
	out[2 * len] = '\0';
	return 0;
}

static int
crypto_hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int
crypto_hex_decode(
    const char *s, size_t slen, uint8_t *out, size_t cap, size_t *outlen)
{
	size_t i;

	if (slen % 2 != 0)
		return -ERR_INVAL;
	if (slen / 2 > cap)
		return -ERR_TOOBIG;
	for (i = 0; i < slen; i += 2) {
		int hi = crypto_hexval(s[i]);
		int lo = crypto_hexval(s[i + 1]);

		if (hi < 0 || lo < 0)
			return -ERR_INVAL;
		out[i / 2] = (uint8_t)(hi << 4 | lo);
	}
	*outlen = slen / 2;
	return 0;
}

int
crypto_random_hex(size_t nbytes, char *out, size_t cap)
{
	uint8_t raw[256];
	int     rv;

	if (nbytes > sizeof(raw) || cap < 2 * nbytes + 1)
		return -ERR_TOOBIG;
	rv = crypto_random(raw, nbytes);
	if (rv != 0)
		return rv;
	rv = crypto_hex_encode(raw, nbytes, out, cap);
	OPENSSL_cleanse(raw, sizeof(raw));
	return rv;
}

int
crypto_token(const char *prefix, size_t nbytes, char *out, size_t cap)
{
	size_t plen = strlen(prefix);

	if (plen >= cap)
		return -ERR_TOOBIG;
	memcpy(out, prefix, plen);
	return crypto_random_hex(nbytes, out + plen, cap - plen);
}

bool
crypto_ct_equal(const void *a, const void *b, size_t len)
{
	return CRYPTO_memcmp(a, b, len) == 0;
}

bool
crypto_ct_streq(const char *a, const char *b)
{
	uint8_t da[CRYPTO_SHA256_LEN], db[CRYPTO_SHA256_LEN];

	/*
	 * Comparing digests keeps the time independent of where the strings
	 * differ and of the secret's length; the lengths are compared too so
	 * a digest collision alone cannot pass.
	 */
	crypto_sha256(a, strlen(a), da);
	crypto_sha256(b, strlen(b), db);
	return (CRYPTO_memcmp(da, db, sizeof(da)) == 0) &
	    (strlen(a) == strlen(b));
}

int
crypto_b64_encode(const void *p, size_t len, char *out, size_t cap)
{
	size_t need;

	if (len > (size_t)INT32_MAX / 2)
		return -ERR_TOOBIG;
	need = 4 * ((len + 2) / 3) + 1;
	if (cap < need)
		return -ERR_TOOBIG;
	EVP_EncodeBlock((unsigned char *)out, p, (int)len);
	out[need - 1] = '\0';
	return 0;
}

int
crypto_b64_decode(
    const char *s, size_t slen, uint8_t *out, size_t cap, size_t *outlen)
{
	uint8_t *tmp;
	size_t   pad = 0, n, i;
	int      got;

	if (slen % 4 != 0 || slen > (size_t)INT32_MAX / 2)
		return -ERR_INVAL;
	if (slen == 0) {
		*outlen = 0;
		return 0;
	}
	for (i = 0; i < slen; i++) {
		char c = s[i];

		if (c == '=') {
			if (i < slen - 2)
				return -ERR_INVAL;
			continue;
		}
		if (i == slen - 1 && s[slen - 2] == '=')
			return -ERR_INVAL; /* data after padding */
		if (!(isalnum((unsigned char)c) || c == '+' || c == '/'))
			return -ERR_INVAL;
	}
	if (s[slen - 1] == '=')
		pad++;
	if (s[slen - 2] == '=')
		pad++;
	n = slen / 4 * 3 - pad;
	if (n > cap)
		return -ERR_TOOBIG;
	tmp = xmalloc(slen / 4 * 3 + 1);
	got = EVP_DecodeBlock(tmp, (const unsigned char *)s, (int)slen);
	if (got < 0 || (size_t)got != slen / 4 * 3) {
		crypto_free_secret(tmp, slen / 4 * 3 + 1);
		return -ERR_INVAL;
	}
	memcpy(out, tmp, n);
	crypto_free_secret(tmp, slen / 4 * 3 + 1);
	*outlen = n;
	return 0;
}

int
crypto_key_load(const char *s, struct crypto_key *out)
{
	uint8_t raw[64];
	size_t  len, n = 0;
	int     rv;

	while (isspace((unsigned char)*s))
		s++;
	len = strlen(s);
	while (len > 0 && isspace((unsigned char)s[len - 1]))
		len--;
	if (len == 2 * CRYPTO_KEY_LEN &&
	    crypto_hex_decode(s, len, raw, sizeof(raw), &n) == 0) {
		/* 64 hex digits. */
	} else {
		rv = crypto_b64_decode(s, len, raw, sizeof(raw), &n);
		if (rv != 0)
			n = 0;
	}
	if (n != CRYPTO_KEY_LEN) {
		OPENSSL_cleanse(raw, sizeof(raw));
		return -ERR_CONFIG;
	}
	memcpy(out->k, raw, CRYPTO_KEY_LEN);
	OPENSSL_cleanse(raw, sizeof(raw));
	return 0;
}

int
crypto_key_from_env(const char *var, struct crypto_key *out)
{
	const char *v = getenv(var);

	if (v == NULL || *v == '\0')
		return -ERR_CONFIG;
	return crypto_key_load(v, out);
}

void
crypto_key_wipe(struct crypto_key *key)
{
	if (key != NULL)
		OPENSSL_cleanse(key->k, sizeof(key->k));
}

void
crypto_free_secret(void *p, size_t len)
{
	if (p == NULL)
		return;
	OPENSSL_cleanse(p, len);
	free(p);
}

size_t
crypto_seal_len(size_t ptlen)
{
	return ptlen + CRYPTO_SEAL_OVERHEAD;
}

/*
 * Runs one AES-256-GCM operation.  The authenticated data is the version
 * byte followed by the caller's aad.  enc: encrypt in -> out and write the
 * tag; else decrypt and check the tag.
 */
static int
crypto_gcm(bool enc, const struct crypto_key *key, const uint8_t *nonce,
    const void *aad, size_t aadlen, const uint8_t *in, size_t len, uint8_t *out,
    uint8_t *tag)
{
	EVP_CIPHER_CTX *ctx;
	const uint8_t   ver = CRYPTO_SEAL_VERSION;
	int             n, rv = -ERR_CRYPTO;

	if (aadlen > INT32_MAX || len > INT32_MAX)
		return -ERR_TOOBIG;
	ctx = EVP_CIPHER_CTX_new();
	if (ctx == NULL)
		return -ERR_NOMEM;
	if (EVP_CipherInit_ex(
	        ctx, EVP_aes_256_gcm(), NULL, NULL, NULL, enc ? 1 : 0) != 1)
		goto out;
	if (EVP_CIPHER_CTX_ctrl(
	        ctx, EVP_CTRL_GCM_SET_IVLEN, CRYPTO_NONCE_LEN, NULL) != 1)
		goto out;
	if (EVP_CipherInit_ex(ctx, NULL, NULL, key->k, nonce, -1) != 1)
		goto out;
	if (EVP_CipherUpdate(ctx, NULL, &n, &ver, 1) != 1)
		goto out;
	if (aadlen > 0 &&
	    EVP_CipherUpdate(ctx, NULL, &n, aad, (int)aadlen) != 1)
		goto out;
	if (len > 0 && EVP_CipherUpdate(ctx, out, &n, in, (int)len) != 1)
		goto out;
	if (!enc &&
	    EVP_CIPHER_CTX_ctrl(
	        ctx, EVP_CTRL_GCM_SET_TAG, CRYPTO_TAG_LEN, tag) != 1)
		goto out;
	if (EVP_CipherFinal_ex(ctx, out + len, &n) != 1)
		goto out;
	if (enc &&
	    EVP_CIPHER_CTX_ctrl(
	        ctx, EVP_CTRL_GCM_GET_TAG, CRYPTO_TAG_LEN, tag) != 1)
		goto out;
	rv = 0;
out:
	EVP_CIPHER_CTX_free(ctx);
	return rv;
}

int
crypto_seal(const struct crypto_key *key, const void *aad, size_t aadlen,
    const void *pt, size_t ptlen, uint8_t **out, size_t *outlen)
{
	uint8_t *blob;
	size_t   n;
	int      rv;

	if (ptlen > CRYPTO_SEAL_MAX)
		return -ERR_TOOBIG;
	n = crypto_seal_len(ptlen);
	blob = xmalloc(n + 1); /* +1: GCM final may touch out + len */
	blob[0] = CRYPTO_SEAL_VERSION;
	rv = crypto_random(blob + 1, CRYPTO_NONCE_LEN);
	if (rv == 0)
		rv = crypto_gcm(true, key, blob + 1, aad, aadlen, pt, ptlen,
		    blob + 1 + CRYPTO_NONCE_LEN,
		    blob + 1 + CRYPTO_NONCE_LEN + ptlen);
	if (rv != 0) {
		crypto_free_secret(blob, n + 1);
		return rv;
	}
	*out = blob;
	*outlen = n;
	return 0;
}

int
crypto_open(const struct crypto_key *key, const void *aad, size_t aadlen,
    const uint8_t *blob, size_t bloblen, uint8_t **out, size_t *outlen)
{
	uint8_t  tag[CRYPTO_TAG_LEN];
	uint8_t *pt;
	size_t   len;
	int      rv;

	if (bloblen < CRYPTO_SEAL_OVERHEAD || blob[0] != CRYPTO_SEAL_VERSION)
		return -ERR_CRYPTO;
	len = bloblen - CRYPTO_SEAL_OVERHEAD;
	if (len > CRYPTO_SEAL_MAX)
		return -ERR_TOOBIG;
	memcpy(tag, blob + 1 + CRYPTO_NONCE_LEN + len, CRYPTO_TAG_LEN);
	pt = xmalloc(len + 1);
	rv = crypto_gcm(false, key, blob + 1, aad, aadlen,
	    blob + 1 + CRYPTO_NONCE_LEN, len, pt, tag);
	if (rv != 0) {
		crypto_free_secret(pt, len + 1);
		return -ERR_CRYPTO;
	}
	pt[len] = '\0';
	*out = pt;
	*outlen = len;
	return 0;
}

static int
crypto_scrypt_check(uint64_t n, uint64_t r, uint64_t p)
{
	if (n < 2 || n > CRYPTO_SCRYPT_NMAX || (n & (n - 1)) != 0)
		return -ERR_INVAL;
	if (r < 1 || r > 32 || p < 1 || p > 16)
		return -ERR_INVAL;
	return 0;
}

static int
crypto_scrypt(const char *pw, const uint8_t *salt, size_t saltlen, uint64_t n,
    uint64_t r, uint64_t p, uint8_t *dk, size_t dklen)
{
	/* scrypt needs 128 * N * r bytes for V plus 128 * r * p for B. */
	uint64_t maxmem = 128 * n * r + 128 * r * p + (1u << 20);

	if (EVP_PBE_scrypt(
	        pw, strlen(pw), salt, saltlen, n, r, p, maxmem, dk, dklen) != 1)
		return -ERR_CRYPTO;
	return 0;
}

int
crypto_pw_hash_params(
    const char *pw, uint64_t n, uint64_t r, uint64_t p, char *out, size_t cap)
{
	uint8_t salt[CRYPTO_SALT_LEN], dk[CRYPTO_DK_LEN];
	char    salt64[64], dk64[64];
	int     rv, len;

	if (strlen(pw) > CRYPTO_PW_MAX)
		return -ERR_TOOBIG;
	rv = crypto_scrypt_check(n, r, p);
	if (rv != 0)
		return rv;
	rv = crypto_random(salt, sizeof(salt));
	if (rv != 0)
		return rv;
	rv = crypto_scrypt(pw, salt, sizeof(salt), n, r, p, dk, sizeof(dk));
	if (rv == 0)
		rv = crypto_b64_encode(
		    salt, sizeof(salt), salt64, sizeof(salt64));
	if (rv == 0)
		rv = crypto_b64_encode(dk, sizeof(dk), dk64, sizeof(dk64));
	if (rv == 0) {
		len = snprintf(out, cap,
		    "scrypt$%" PRIu64 "$%" PRIu64 "$%" PRIu64 "$%s$%s", n, r, p,
		    salt64, dk64);
		if (len < 0 || (size_t)len >= cap)
			rv = -ERR_TOOBIG;
	}
	OPENSSL_cleanse(dk, sizeof(dk));
	OPENSSL_cleanse(dk64, sizeof(dk64));
	return rv;
}

int
crypto_pw_hash(const char *pw, char *out, size_t cap)
{
	return crypto_pw_hash_params(
	    pw, CRYPTO_SCRYPT_N, CRYPTO_SCRYPT_R, CRYPTO_SCRYPT_P, out, cap);
}

/* Parses a decimal field of the password string up to '$'. */
static int
crypto_pw_num(const char **sp, uint64_t *out)
{
	const char *s = *sp;
	uint64_t    v = 0;
	size_t      i;

	for (i = 0; s[i] >= '0' && s[i] <= '9'; i++) {
		if (i >= 9)
			return -ERR_INVAL;
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	if (i == 0 || s[i] != '$')
		return -ERR_INVAL;
	*sp = s + i + 1;
	*out = v;
	return 0;
}

int
crypto_pw_verify(const char *pw, const char *stored)
{
	uint8_t     salt[64], want[CRYPTO_DK_MAX], got[CRYPTO_DK_MAX];
	size_t      saltlen, wantlen;
	uint64_t    n, r, p;
	const char *s = stored, *dollar;
	int         rv;

	if (strncmp(s, "scrypt$", 7) != 0 ||
	    strlen(stored) > CRYPTO_PW_HASH_MAX)
		return -ERR_INVAL;
	s += 7;
	if (crypto_pw_num(&s, &n) != 0 || crypto_pw_num(&s, &r) != 0 ||
	    crypto_pw_num(&s, &p) != 0)
		return -ERR_INVAL;
	rv = crypto_scrypt_check(n, r, p);
	if (rv != 0)
		return rv;
	dollar = strchr(s, '$');
	if (dollar == NULL)
		return -ERR_INVAL;
	if (crypto_b64_decode(
	        s, (size_t)(dollar - s), salt, sizeof(salt), &saltlen) != 0 ||
	    saltlen == 0)
		return -ERR_INVAL;
	s = dollar + 1;
	if (crypto_b64_decode(s, strlen(s), want, sizeof(want), &wantlen) !=
	        0 ||
	    wantlen < CRYPTO_DK_MIN)
		return -ERR_INVAL;
	if (strlen(pw) > CRYPTO_PW_MAX)
		return -ERR_AUTH;
	rv = crypto_scrypt(pw, salt, saltlen, n, r, p, got, wantlen);
	if (rv == 0 && !crypto_ct_equal(got, want, wantlen))
		rv = -ERR_AUTH;
	OPENSSL_cleanse(got, sizeof(got));
	OPENSSL_cleanse(want, sizeof(want));
	return rv;
}
