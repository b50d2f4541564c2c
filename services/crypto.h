/*
 * crypto.h: the project's small cryptography toolbox (OpenSSL 3).
 *
 * Hashes (SHA-256), randomness (bytes, hex strings, prefixed tokens such as
 * API keys), constant-time comparison, hex and base64 codecs, authenticated
 * encryption of secrets at rest (AES-256-GCM) and password hashing (scrypt).
 * Every function is thread-safe and allocation-free unless it says it
 * returns an owned buffer.
 *
 * Sealed blob format (version 1), as stored in bytea columns:
 *
 *   0x01 | nonce (12 bytes, random) | ciphertext (= plaintext length) | tag
 * (16)
 *
 * The version byte is authenticated together with the caller's associated
 * data, so a blob cannot be re-labelled.  Associated data binds a blob to
 * where it lives; the conventions of this project are
 *   "sub2api:account:<id>:credentials"  accounts.credentials_enc
 *   "sub2api:proxy:<id>:password"       proxies.password_enc
 * (CRYPTO_AAD_ACCOUNT_FMT / CRYPTO_AAD_PROXY_FMT below).
 *
 * The key is 32 bytes given as 64 hex characters or as base64; services
 * read it from the environment variable SUB2API_SECRET_KEY.
 *
 * Password strings: "scrypt$N$r$p$salt_b64$hash_b64" (standard base64 with
 * padding), e.g. scrypt$32768$8$1$...$... .
 */
#ifndef CRYPTO_H
#define CRYPTO_H

#include "compat.h"

#define CRYPTO_SHA256_LEN     32
#define CRYPTO_SHA256_HEX_LEN 64 /* plus 1 for the terminator */
#define CRYPTO_KEY_LEN        32
#define CRYPTO_SEAL_VERSION   1
#define CRYPTO_NONCE_LEN      12
#define CRYPTO_TAG_LEN        16
#define CRYPTO_SEAL_OVERHEAD  (1 + CRYPTO_NONCE_LEN + CRYPTO_TAG_LEN)
#define CRYPTO_SEAL_MAX       (1 << 20) /* plaintext cap: 1 MiB */
#define CRYPTO_PW_MAX         1024      /* longest password accepted */
#define CRYPTO_PW_HASH_MAX    256       /* buffer for a password string */
#define CRYPTO_KEY_ENV        "SUB2API_SECRET_KEY"

#define CRYPTO_AAD_ACCOUNT_FMT "sub2api:account:%lld:credentials"
#define CRYPTO_AAD_PROXY_FMT   "sub2api:proxy:%lld:password"

/* A symmetric key; wipe it with crypto_key_wipe() when done. */
struct crypto_key {
	uint8_t k[CRYPTO_KEY_LEN];
};

/* SHA-256 of (p, len) into out (raw) or into 64 lowercase hex + NUL. */
void crypto_sha256(const void *p, size_t len, uint8_t out[CRYPTO_SHA256_LEN]);
void crypto_sha256_hex(
    const void *p, size_t len, char out[CRYPTO_SHA256_HEX_LEN + 1]);

/* Fills out with len bytes from the CSPRNG; -ERR_CRYPTO on failure. */
int crypto_random(void *out, size_t len) WARN_UNUSED;

/*
 * Writes 2 * nbytes lowercase hex characters of fresh randomness plus a
 * NUL into out; -ERR_TOOBIG when cap < 2 * nbytes + 1.
 */
int crypto_random_hex(size_t nbytes, char *out, size_t cap) WARN_UNUSED;

/*
 * A token: prefix (borrowed, may be "") followed by 2 * nbytes hex, e.g.
 * crypto_token("sk-", 32, ...) gives an API key.  -ERR_TOOBIG if it does
 * not fit in cap (including the NUL).
 */
int crypto_token(
    const char *prefix, size_t nbytes, char *out, size_t cap) WARN_UNUSED;

/*
 * Constant-time equality of two buffers of the same length, and of two
 * strings (the time depends on the lengths only, never on the contents).
 */
bool crypto_ct_equal(const void *a, const void *b, size_t len);
bool crypto_ct_streq(const char *a, const char *b);

/* Lowercase hex of (p, len) into out; needs cap >= 2 * len + 1. */
int crypto_hex_encode(
    const void *p, size_t len, char *out, size_t cap) WARN_UNUSED;

/*
 * Decodes exactly slen hex digits (either case) into out; *outlen gets the
 * byte count.  -ERR_INVAL on odd length or a non-hex digit, -ERR_TOOBIG
 * past cap.
 */
int crypto_hex_decode(const char *s, size_t slen, uint8_t *out, size_t cap,
    size_t *outlen) WARN_UNUSED;

/* Standard base64 with padding, NUL-terminated; needs 4*ceil(len/3)+1. */
int crypto_b64_encode(
    const void *p, size_t len, char *out, size_t cap) WARN_UNUSED;

/*
 * Decodes standard padded base64 (length a multiple of 4, no whitespace).
 * -ERR_INVAL on malformed input, -ERR_TOOBIG past cap.
 */
int crypto_b64_decode(const char *s, size_t slen, uint8_t *out, size_t cap,
    size_t *outlen) WARN_UNUSED;

/*
 * Parses a key given as 64 hex characters or as base64 of exactly 32
 * bytes (surrounding whitespace ignored).  -ERR_CONFIG when malformed.
 * crypto_key_from_env() reads the variable var (CRYPTO_KEY_ENV normally)
 * and returns -ERR_CONFIG when it is unset or empty.
 */
int  crypto_key_load(const char *s, struct crypto_key *out) WARN_UNUSED;
int  crypto_key_from_env(const char *var, struct crypto_key *out) WARN_UNUSED;
void crypto_key_wipe(struct crypto_key *key);

/* Length of the sealed blob of a plaintext of ptlen bytes. */
size_t crypto_seal_len(size_t ptlen);

/*
 * Encrypts (pt, ptlen) with key under a fresh random nonce, authenticating
 * (aad, aadlen) too (aad may be NULL when aadlen is 0).  On success *out
 * is an owned xmalloc'd blob of *outlen bytes (free()).  All inputs are
 * borrowed.  -ERR_TOOBIG past CRYPTO_SEAL_MAX, -ERR_CRYPTO on failure.
 */
int crypto_seal(const struct crypto_key *key, const void *aad, size_t aadlen,
    const void *pt, size_t ptlen, uint8_t **out, size_t *outlen) WARN_UNUSED;

/*
 * Verifies and decrypts a sealed blob.  On success *out is an owned buffer
 * of *outlen bytes plus a NUL terminator (so JSON text can be read as a
 * string); release it with crypto_free_secret(*out, *outlen).  Any
 * tampering, a wrong key, wrong aad or an unknown version gives
 * -ERR_CRYPTO and writes nothing.
 */
int crypto_open(const struct crypto_key *key, const void *aad, size_t aadlen,
    const uint8_t *blob, size_t bloblen, uint8_t **out,
    size_t *outlen) WARN_UNUSED;

/* Wipes len bytes of p and frees it; p may be NULL. */
void crypto_free_secret(void *p, size_t len);

/* scrypt defaults: N = 2^15, r = 8, p = 1 (32 MiB, ~0.1 s). */
#define CRYPTO_SCRYPT_N 32768
#define CRYPTO_SCRYPT_R 8
#define CRYPTO_SCRYPT_P 1

/*
 * Hashes a password (borrowed, at most CRYPTO_PW_MAX bytes) with a fresh
 * 16-byte salt into the string format above, written to out (cap at least
 * CRYPTO_PW_HASH_MAX).  crypto_pw_hash_params() takes explicit cost
 * parameters (N a power of two, 2..2^20; r 1..32; p 1..16).
 */
int crypto_pw_hash(const char *pw, char *out, size_t cap) WARN_UNUSED;
int crypto_pw_hash_params(const char *pw, uint64_t n, uint64_t r, uint64_t p,
    char *out, size_t cap) WARN_UNUSED;

/*
 * Checks pw against a stored string: 0 when it matches, -ERR_AUTH when it
 * does not, -ERR_INVAL when the string is malformed or its parameters are
 * out of bounds (so a hostile row cannot demand unbounded memory).
 */
int crypto_pw_verify(const char *pw, const char *stored) WARN_UNUSED;

#endif /* CRYPTO_H */
