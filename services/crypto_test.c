/*
 * crypto_test.c: known answers for SHA-256, scrypt (RFC 7914) and an
 * AES-256-GCM blob produced by an independent implementation; round trips,
 * tamper, wrong-key and wrong-aad failures; codecs and key loading.
 */
#include <stdio.h>
#include <stdlib.h>

#include "crypto.h"
#include "err.h"
#include "t.h"

static const char key_hex[] =
    "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
static const char key_b64[] = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

static void
test_crypto_sha256_abc(void)
{
	char hex[CRYPTO_SHA256_HEX_LEN + 1];

	crypto_sha256_hex("abc", 3, hex);
	T_EQ_STR(hex,
	    "ba7816bf8f01cfea414140de5dae2223"
	    "b00361a396177a9cb410ff61f20015ad");
	crypto_sha256_hex("", 0, hex);
	T_EQ_STR(hex,
	    "e3b0c44298fc1c149afbf4c8996fb924"
	    "27ae41e4649b934ca495991b7852b855");
}

static void
test_crypto_random_token(void)
{
	char a[80], b[80];
	char small[10];
	int  i;

	T_OK(crypto_token("sk-", 32, a, sizeof(a)));
	T_OK(crypto_token("sk-", 32, b, sizeof(b)));
	T_EQ_INT(strlen(a), 67);
	T_ASSERT(strncmp(a, "sk-", 3) == 0);
	for (i = 3; i < 67; i++)
		T_ASSERT(strchr("0123456789abcdef", a[i]) != NULL);
	T_ASSERT(strcmp(a, b) != 0);
	T_EQ_INT(crypto_token("sk-", 32, small, sizeof(small)), -ERR_TOOBIG);
	T_OK(crypto_random_hex(16, a, 33));
	T_EQ_INT(strlen(a), 32);
}

static void
test_crypto_ct_compare(void)
{
	T_ASSERT(crypto_ct_equal("abcd", "abcd", 4));
	T_ASSERT(!crypto_ct_equal("abcd", "abce", 4));
	T_ASSERT(crypto_ct_streq("admin-xyz", "admin-xyz"));
	T_ASSERT(!crypto_ct_streq("admin-xyz", "admin-xy"));
	T_ASSERT(!crypto_ct_streq("", "a"));
	T_ASSERT(crypto_ct_streq("", ""));
}

static void
test_crypto_codecs(void)
{
	uint8_t out[64];
	char    s[64];
	size_t  n;

	T_OK(crypto_b64_encode("hello", 5, s, sizeof(s)));
	T_EQ_STR(s, "aGVsbG8=");
	T_OK(crypto_b64_decode("aGVsbG8=", 8, out, sizeof(out), &n));
	T_EQ_INT(n, 5);
	T_ASSERT(memcmp(out, "hello", 5) == 0);
	T_OK(crypto_b64_decode("aGk=", 4, out, sizeof(out), &n));
	T_EQ_INT(n, 2);
	T_EQ_INT(
	    crypto_b64_decode("aGVsbG8", 7, out, sizeof(out), &n), -ERR_INVAL);
	T_EQ_INT(
	    crypto_b64_decode("aG=s", 4, out, sizeof(out), &n), -ERR_INVAL);
	T_EQ_INT(
	    crypto_b64_decode("a!==", 4, out, sizeof(out), &n), -ERR_INVAL);
	T_EQ_INT(crypto_b64_decode("aGVsbG8=", 8, out, 4, &n), -ERR_TOOBIG);
	T_OK(crypto_hex_decode("00fFa0", 6, out, sizeof(out), &n));
	T_EQ_INT(n, 3);
	T_EQ_INT(out[1], 0xff);
	T_EQ_INT(crypto_hex_decode("0g", 2, out, sizeof(out), &n), -ERR_INVAL);
	T_EQ_INT(crypto_hex_decode("abc", 3, out, sizeof(out), &n), -ERR_INVAL);
}

static void
test_crypto_key_load(void)
{
	struct crypto_key a, b;

	T_OK(crypto_key_load(key_hex, &a));
	T_OK(crypto_key_load(key_b64, &b));
	T_ASSERT(memcmp(a.k, b.k, CRYPTO_KEY_LEN) == 0);
	T_EQ_INT(a.k[31], 0x1f);
	T_OK(crypto_key_load("  "
	                     "000102030405060708090a0b0c0d0e0f"
	                     "101112131415161718191a1b1c1d1e1f\n",
	    &b));
	T_EQ_INT(crypto_key_load("0011", &b), -ERR_CONFIG);
	T_EQ_INT(crypto_key_load("aGVsbG8=", &b), -ERR_CONFIG);
	T_EQ_INT(crypto_key_load("", &b), -ERR_CONFIG);
	unsetenv("CRYPTO_TEST_KEY");
	T_EQ_INT(crypto_key_from_env("CRYPTO_TEST_KEY", &b), -ERR_CONFIG);
	setenv("CRYPTO_TEST_KEY", key_b64, 1);
	T_OK(crypto_key_from_env("CRYPTO_TEST_KEY", &b));
	crypto_key_wipe(&b);
	T_EQ_INT(b.k[31], 0);
	crypto_key_wipe(&a);
}

/* Blob produced by Python's cryptography AESGCM with the key above. */
static void
test_crypto_open_known_blob(void)
{
	static const char blob_hex[] =
	    "01a0a1a2a3a4a5a6a7a8a9aaab9d3a1d5d2c9469da1b47bdf17411edbf1ed874"
	    "68ebcd60111f6e2b018413f4836396c38b4357efd6";
	static const char aad[] = "sub2api:account:7:credentials";
	struct crypto_key k;
	uint8_t           blob[128], *pt = NULL;
	size_t            bloblen, ptlen;

	T_OK(crypto_key_load(key_hex, &k));
	T_OK(crypto_hex_decode(
	    blob_hex, strlen(blob_hex), blob, sizeof(blob), &bloblen));
	T_OK(crypto_open(&k, aad, strlen(aad), blob, bloblen, &pt, &ptlen));
	T_EQ_STR((char *)pt, "{\"api_key\":\"sk-ant-xyz\"}");
	crypto_free_secret(pt, ptlen + 1);
	/* The same blob under another row's aad must not open. */
	T_EQ_INT(crypto_open(&k, "sub2api:account:8:credentials", 29, blob,
	             bloblen, &pt, &ptlen),
	    -ERR_CRYPTO);
	crypto_key_wipe(&k);
}

static void
test_crypto_seal_roundtrip_tamper(void)
{
	static const char msg[] = "{\"access_token\":\"secret-token\"}";
	struct crypto_key k, wrong;
	uint8_t          *blob = NULL, *pt = NULL;
	size_t            bloblen, ptlen, i;

	T_OK(crypto_key_load(key_hex, &k));
	T_OK(crypto_random(wrong.k, sizeof(wrong.k)));
	T_OK(crypto_seal(&k, "ctx", 3, msg, strlen(msg), &blob, &bloblen));
	T_EQ_INT(bloblen, crypto_seal_len(strlen(msg)));
	T_EQ_INT(blob[0], CRYPTO_SEAL_VERSION);
	T_ASSERT(memmem(blob, bloblen, "secret-token", 12) == NULL);

	T_OK(crypto_open(&k, "ctx", 3, blob, bloblen, &pt, &ptlen));
	T_EQ_INT(ptlen, strlen(msg));
	T_EQ_STR((char *)pt, msg);
	crypto_free_secret(pt, ptlen + 1);

	T_EQ_INT(crypto_open(&wrong, "ctx", 3, blob, bloblen, &pt, &ptlen),
	    -ERR_CRYPTO);
	T_EQ_INT(
	    crypto_open(&k, "ctX", 3, blob, bloblen, &pt, &ptlen), -ERR_CRYPTO);
	/* Flipping any single byte (version, nonce, body, tag) is caught. */
	for (i = 0; i < bloblen; i++) {
		blob[i] ^= 0x01;
		T_EQ_INT(crypto_open(&k, "ctx", 3, blob, bloblen, &pt, &ptlen),
		    -ERR_CRYPTO);
		blob[i] ^= 0x01;
	}
	T_EQ_INT(crypto_open(&k, "ctx", 3, blob, bloblen - 1, &pt, &ptlen),
	    -ERR_CRYPTO);
	T_EQ_INT(crypto_open(&k, "ctx", 3, blob, 5, &pt, &ptlen), -ERR_CRYPTO);
	free(blob);

	/* Empty plaintext and no aad are fine too. */
	T_OK(crypto_seal(&k, NULL, 0, "", 0, &blob, &bloblen));
	T_EQ_INT(bloblen, CRYPTO_SEAL_OVERHEAD);
	T_OK(crypto_open(&k, NULL, 0, blob, bloblen, &pt, &ptlen));
	T_EQ_INT(ptlen, 0);
	crypto_free_secret(pt, 1);
	free(blob);
	crypto_key_wipe(&k);
	crypto_key_wipe(&wrong);
}

/* RFC 7914 section 12, second vector, checked through the string format. */
static void
test_crypto_scrypt_rfc7914(void)
{
	static const char stored[] =
	    "scrypt$1024$8$16$TmFDbA==$/bq+HJ00cgB4VucZDQHp/nxq18vII3gw53N2Y0s3"
	    "MWIurzDZLiKjiG/xCSedmDDaxyevuUqD7m2DYMvfoswGQA==";

	T_OK(crypto_pw_verify("password", stored));
	T_EQ_INT(crypto_pw_verify("Password", stored), -ERR_AUTH);
}

static void
test_crypto_pw_hash_verify(void)
{
	char h[CRYPTO_PW_HASH_MAX], h2[CRYPTO_PW_HASH_MAX];

	T_OK(crypto_pw_hash("correct horse", h, sizeof(h)));
	T_ASSERT(strncmp(h, "scrypt$32768$8$1$", 17) == 0);
	T_OK(crypto_pw_verify("correct horse", h));
	T_EQ_INT(crypto_pw_verify("correct horse!", h), -ERR_AUTH);
	T_EQ_INT(crypto_pw_verify("", h), -ERR_AUTH);
	/* Fresh salt each time. */
	T_OK(
	    crypto_pw_hash_params("correct horse", 1024, 8, 1, h2, sizeof(h2)));
	T_ASSERT(strcmp(h, h2) != 0);
	T_OK(crypto_pw_verify("correct horse", h2));
	/* Malformed or hostile strings are refused before any work. */
	T_EQ_INT(crypto_pw_verify("x", "bcrypt$..."), -ERR_INVAL);
	T_EQ_INT(
	    crypto_pw_verify("x", "scrypt$1000$8$1$TmFDbA==$AAAA"), -ERR_INVAL);
	T_EQ_INT(crypto_pw_verify("x",
	             "scrypt$2097152$8$1$TmFDbA==$"
	             "AAAAAAAAAAAAAAAAAAAAAA=="),
	    -ERR_INVAL);
	T_EQ_INT(
	    crypto_pw_verify("x", "scrypt$1024$8$1$TmFDbA==$AAAA"), -ERR_INVAL);
	T_EQ_INT(crypto_pw_verify("x", "scrypt$1024$8$1$TmFDbA=="), -ERR_INVAL);
	T_EQ_INT(
	    crypto_pw_hash_params("x", 1000, 8, 1, h2, sizeof(h2)), -ERR_INVAL);
	T_EQ_INT(crypto_pw_hash("x", h2, 20), -ERR_TOOBIG);
}

T_MAIN(T_CASE(test_crypto_sha256_abc), T_CASE(test_crypto_random_token),
    T_CASE(test_crypto_ct_compare), T_CASE(test_crypto_codecs),
    T_CASE(test_crypto_key_load), T_CASE(test_crypto_open_known_blob),
    T_CASE(test_crypto_seal_roundtrip_tamper),
    T_CASE(test_crypto_scrypt_rfc7914), T_CASE(test_crypto_pw_hash_verify))
