#define MICROWEB_IMPLEMENTATION
#include "microweb.h"
#include "harness.h"

/* Tests of the crypto section: SHA-256, SHA-1, HMAC-SHA256, base64 and base64url, and the
   constant-time comparison. Every expected value is typed in from the document named
   next to it. */

static const char *hex(const unsigned char *p, size_t n) {
    static char out[129];
    size_t i;
    for (i = 0; i < n && i < 64; i++) sprintf(out + 2 * i, "%02x", p[i]);
    out[2 * i] = '\0';
    return out;
}

static const char *sha256_hex(const void *data, size_t n) {
    mw__sha256 s;
    unsigned char d[32];
    mw__sha256_init(&s);
    mw__sha256_update(&s, data, n);
    mw__sha256_final(&s, d);
    return hex(d, sizeof d);
}

static const char *hmac_hex(const void *key, size_t key_len, const char *msg, size_t msg_len) {
    unsigned char mac[32];
    mw__hmac_sha256(key, key_len, msg, msg_len, mac);
    return hex(mac, sizeof mac);
}

/* FIPS 180-2 appendix B.1 (and NIST's SHA256.pdf example for FIPS 180-4): one block. */
TEST(test_sha256_of_abc) {
    CHECK_STR(sha256_hex("abc", 3), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

/* NIST CAVP SHAVS SHA256ShortMsg.rsp, Len = 0: a block of padding alone (FIPS 180-4 §5.1.1). */
TEST(test_sha256_of_empty_message) {
    CHECK_STR(sha256_hex("", 0), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    CHECK_STR(sha256_hex(NULL, 0), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

/* FIPS 180-2 appendix B.2 (NIST's SHA256.pdf two-block example): 448 bits, so the
   length field no longer fits in the first block. */
TEST(test_sha256_of_448_bit_message) {
    const char *m = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    CHECK_STR(sha256_hex(m, strlen(m)), "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
}

/* The 896-bit message of FIPS 180-2's SHA-512 multi-block example; its SHA-256 digest as
   in the table of NIST-derived vectors at di-mgt.com.au/sha_testvectors.html. */
TEST(test_sha256_of_896_bit_message) {
    const char *m =
        "abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopqrst"
        "nopqrstu";
    CHECK_STR(sha256_hex(m, strlen(m)), "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1");
}

/* FIPS 180-2 appendix B.3: one million 'a', here fed in uneven pieces that start and end
   on every side of a block boundary. */
TEST(test_sha256_of_million_a_in_uneven_pieces) {
    static const size_t pieces[] = {1, 63, 64, 65, 1000, 127, 128, 129};
    unsigned char a[1000], d[32];
    mw__sha256 s;
    size_t total = 0, i = 0;
    memset(a, 'a', sizeof a);
    mw__sha256_init(&s);
    while (total < 1000000) {
        size_t n = pieces[i++ % (sizeof pieces / sizeof *pieces)];
        if (n > 1000000 - total) n = 1000000 - total;
        mw__sha256_update(&s, a, n);
        total += n;
    }
    mw__sha256_final(&s, d);
    CHECK_STR(hex(d, sizeof d), "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

/* Every message of 0 to 300 bytes, split at every point, hashes as it does in one piece:
   the block buffering and the padding (which changes at 55/56 bytes into a block) agree. */
TEST(test_sha256_same_digest_for_any_split) {
    unsigned char msg[300], whole[32], split[32];
    uint32_t x = 2463534242u;
    size_t len, cut, i, bad = 0;
    mw__sha256 s;
    for (i = 0; i < sizeof msg; i++) {
        x ^= x << 13, x ^= x >> 17, x ^= x << 5; /* xorshift32 */
        msg[i] = (unsigned char)x;
    }
    for (len = 0; len <= sizeof msg; len++) {
        mw__sha256_init(&s);
        mw__sha256_update(&s, msg, len);
        mw__sha256_final(&s, whole);
        for (cut = 0; cut <= len; cut++) {
            mw__sha256_init(&s);
            mw__sha256_update(&s, msg, cut);
            mw__sha256_update(&s, msg + cut, len - cut);
            mw__sha256_final(&s, split);
            bad += memcmp(whole, split, sizeof whole) != 0;
        }
    }
    CHECK_INT(bad, 0);
}

/* RFC 4231 §4.2, test case 1. */
TEST(test_hmac_rfc4231_case_1) {
    unsigned char key[20];
    memset(key, 0x0b, sizeof key);
    CHECK_STR(hmac_hex(key, sizeof key, "Hi There", 8),
              "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");
}

/* RFC 4231 §4.3, test case 2: a key shorter than the output. */
TEST(test_hmac_rfc4231_case_2) {
    CHECK_STR(hmac_hex("Jefe", 4, "what do ya want for nothing?", 28),
              "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}

/* RFC 4231 §4.4, test case 3: 50 bytes of 0xdd under 20 bytes of 0xaa. */
TEST(test_hmac_rfc4231_case_3) {
    unsigned char key[20];
    char msg[50];
    memset(key, 0xaa, sizeof key);
    memset(msg, 0xdd, sizeof msg);
    CHECK_STR(hmac_hex(key, sizeof key, msg, sizeof msg),
              "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe");
}

/* RFC 4231 §4.5, test case 4: key 0x01..0x19, 50 bytes of 0xcd. */
TEST(test_hmac_rfc4231_case_4) {
    unsigned char key[25];
    char msg[50];
    size_t i;
    for (i = 0; i < sizeof key; i++) key[i] = (unsigned char)(i + 1);
    memset(msg, 0xcd, sizeof msg);
    CHECK_STR(hmac_hex(key, sizeof key, msg, sizeof msg),
              "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b");
}

/* RFC 4231 §4.6, test case 5: the RFC gives only the first 128 bits. */
TEST(test_hmac_rfc4231_case_5_truncated_to_128_bits) {
    unsigned char key[20], mac[32];
    memset(key, 0x0c, sizeof key);
    mw__hmac_sha256(key, sizeof key, "Test With Truncation", 20, mac);
    CHECK_STR(hex(mac, 16), "a3b6167473100ee06e0c796c2955552b");
}

/* RFC 4231 §4.7, test case 6: a 131-byte key, hashed first (RFC 2104 §2). */
TEST(test_hmac_rfc4231_case_6_key_longer_than_block) {
    unsigned char key[131];
    const char *msg = "Test Using Larger Than Block-Size Key - Hash Key First";
    memset(key, 0xaa, sizeof key);
    CHECK_STR(hmac_hex(key, sizeof key, msg, strlen(msg)),
              "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
}

static const char rfc4231_case_7_data[] =
    "This is a test using a larger than block-size key and a larger than block-size "
    "data. The key needs to be hashed before being used by the HMAC algorithm.";

/* RFC 4231 §4.8, test case 7: a 131-byte key and a 152-byte message. */
TEST(test_hmac_rfc4231_case_7_key_and_data_longer_than_block) {
    unsigned char key[131];
    memset(key, 0xaa, sizeof key);
    CHECK_STR(hmac_hex(key, sizeof key, rfc4231_case_7_data, sizeof rfc4231_case_7_data - 1),
              "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2");
}

/* RFC 4231 §4.8 again, through the incremental interface: a key set up once is copied
   for each message (as the signing key is), and the message arrives in pieces. */
TEST(test_hmac_incremental_from_a_copied_key) {
    unsigned char key[131], mac[32];
    mw__hmac keyed, h;
    size_t len = sizeof rfc4231_case_7_data - 1, i, step;
    memset(key, 0xaa, sizeof key);
    mw__hmac_init(&keyed, key, sizeof key);
    for (step = 1; step <= 70; step += 23) {
        h = keyed;
        for (i = 0; i < len; i += step) mw__hmac_update(&h, rfc4231_case_7_data + i, len - i < step ? len - i : step);
        mw__hmac_final(&h, mac);
        CHECK_STR(hex(mac, sizeof mac), "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2");
    }
}

/* RFC 2104 §2: only a key longer than the 64-byte block is replaced by its hash. */
TEST(test_hmac_hashes_only_keys_longer_than_a_block) {
    unsigned char key[65], hashed[32], a[32], b[32];
    mw__sha256 s;
    size_t len;
    memset(key, 0x5a, sizeof key);
    for (len = 64; len <= 65; len++) {
        mw__sha256_init(&s);
        mw__sha256_update(&s, key, len);
        mw__sha256_final(&s, hashed);
        mw__hmac_sha256(key, len, "msg", 3, a);
        mw__hmac_sha256(hashed, sizeof hashed, "msg", 3, b);
        CHECK_INT(memcmp(a, b, sizeof a) == 0, len == 65);
    }
}

static const char *const rfc4648_plain[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};

/* Encodes and decodes text, checks the encoding against want, and the length the
   encoder promised. */
static void check_base64_vector(const char *plain, const char *want, int url) {
    char enc[16];
    unsigned char dec[16];
    size_t n = strlen(plain), len = mw__base64_encode(enc, plain, n, url);
    long got;
    CHECK_MEM(enc, len, want);
    CHECK_INT(mw__base64_encoded_len(n, url), len);
    got = mw__base64_decode(dec, want, strlen(want), url);
    CHECK_MEM(dec, got < 0 ? 0 : (size_t)got, plain);
    CHECK_INT(got, n);
}

/* RFC 4648 §10, standard alphabet with padding. */
TEST(test_base64_rfc4648_vectors) {
    static const char *const want[] = {"", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy"};
    size_t i;
    for (i = 0; i < sizeof want / sizeof *want; i++) check_base64_vector(rfc4648_plain[i], want[i], 0);
}

/* RFC 4648 §10 with the padding left off, as base64url is used here (§5, §3.2). */
TEST(test_base64url_rfc4648_vectors_without_padding) {
    static const char *const want[] = {"", "Zg", "Zm8", "Zm9v", "Zm9vYg", "Zm9vYmE", "Zm9vYmFy"};
    size_t i;
    for (i = 0; i < sizeof want / sizeof *want; i++) check_base64_vector(rfc4648_plain[i], want[i], 1);
}

/* RFC 4648 §4 and §5: values 62 and 63 are "+/" in one alphabet and "-_" in the other. */
TEST(test_base64_alphabets_differ_in_62_and_63) {
    static const unsigned char fb_ff[] = {0xfb, 0xff};
    unsigned char dec[8];
    char enc[8];
    CHECK_MEM(enc, mw__base64_encode(enc, fb_ff, 2, 0), "+/8=");
    CHECK_MEM(enc, mw__base64_encode(enc, fb_ff, 2, 1), "-_8");
    CHECK_INT(mw__base64_decode(dec, "+/8=", 4, 0), 2);
    CHECK(memcmp(dec, fb_ff, 2) == 0);
    CHECK_INT(mw__base64_decode(dec, "-_8", 3, 1), 2);
    CHECK(memcmp(dec, fb_ff, 2) == 0);
    CHECK_INT(mw__base64_decode(dec, "-w==", 4, 0), -1);
    CHECK_INT(mw__base64_decode(dec, "_w==", 4, 0), -1);
    CHECK_INT(mw__base64_decode(dec, "+w", 2, 1), -1);
    CHECK_INT(mw__base64_decode(dec, "/w", 2, 1), -1);
}

/* Every byte value, at every length from 0 to 256, survives both alphabets. */
TEST(test_base64_round_trips_all_byte_values) {
    unsigned char bytes[256], dec[256 * 3 / 4 + 3 + 256];
    char enc[344];
    size_t i, n, len, bad = 0;
    int url;
    for (i = 0; i < sizeof bytes; i++) bytes[i] = (unsigned char)i;
    for (url = 0; url <= 1; url++) {
        for (n = 0; n <= sizeof bytes; n++) {
            len = mw__base64_encode(enc, bytes, n, url);
            bad += len != mw__base64_encoded_len(n, url);
            bad += mw__base64_decode(dec, enc, len, url) != (long)n || memcmp(dec, bytes, n) != 0;
        }
    }
    CHECK_INT(bad, 0);
}

static long decode(const char *s, int url) {
    unsigned char dst[32];
    return mw__base64_decode(dst, s, strlen(s), url);
}

/* RFC 4648 §3.3: characters outside the alphabet, whitespace and line breaks included. */
TEST(test_base64_rejects_characters_outside_the_alphabet) {
    CHECK_INT(decode("Zm9*", 0), -1);
    CHECK_INT(decode("Zm9*", 1), -1);
    CHECK_INT(decode("Zm9vYm\nF", 0), -1);
    CHECK_INT(decode("Zm9v YmE", 1), -1);
    CHECK_INT(decode("Zm9v\r\n", 1), -1);
    CHECK_INT(decode("Zm9\x80", 1), -1);
}

/* RFC 4648 §3.2: base64url here carries no padding, so '=' is a stray character. */
TEST(test_base64url_rejects_padding) {
    CHECK_INT(decode("Zg==", 1), -1);
    CHECK_INT(decode("Zm8=", 1), -1);
    CHECK_INT(decode("Zg", 1), 1);
}

/* RFC 4648 §4: the standard alphabet comes in whole groups of 4, padded only at the end. */
TEST(test_base64_rejects_wrong_padding) {
    CHECK_INT(decode("Zg", 0), -1);
    CHECK_INT(decode("Zg=", 0), -1);
    CHECK_INT(decode("Zg===", 0), -1);
    CHECK_INT(decode("Z===", 0), -1);
    CHECK_INT(decode("====", 0), -1);
    CHECK_INT(decode("Zm=v", 0), -1);
    CHECK_INT(decode("Zg==Zg==", 0), -1);
}

/* One symbol holds 6 bits, less than a byte: no encoding has a length of 4k+1. */
TEST(test_base64url_rejects_length_4k_plus_1) {
    CHECK_INT(decode("A", 1), -1);
    CHECK_INT(decode("Zm9vA", 1), -1);
}

/* RFC 4648 §3.5: the bits after the last whole byte must be zero, so "f" has the one
   spelling "Zg" and a signed value cannot be respelled. */
TEST(test_base64_rejects_non_canonical_trailing_bits) {
    CHECK_INT(decode("Zh", 1), -1);
    CHECK_INT(decode("Zh==", 0), -1);
    CHECK_INT(decode("Zm9", 1), -1);
    CHECK_INT(decode("Zm9=", 0), -1);
    CHECK_INT(decode("Zm8", 1), 2);
}

/* Every byte of every length up to a signature's 43 counts, in the words and in the
   tail, at any alignment; a byte past the length does not. */
TEST(test_equal_ct) {
    unsigned char a[48], b[48];
    size_t i, n, off;
    int missed = 0, wrong = 0;
    for (i = 0; i < sizeof a; i++) a[i] = b[i] = (unsigned char)(i * 7);
    CHECK_INT(mw__equal_ct(a, b, sizeof a), 1);
    CHECK_INT(mw__equal_ct(a, b, 0), 1);
    for (off = 0; off < 4; off++)
        for (n = 1; n <= 43; n++) {
            for (i = 0; i < n; i++) {
                b[off + i] ^= 0x80;
                missed += mw__equal_ct(a + off, b + off, n);
                b[off + i] ^= 0x80;
            }
            b[off + n] ^= 1;
            wrong += !mw__equal_ct(a + off, b + off, n);
            b[off + n] ^= 1;
        }
    CHECK_INT(missed, 0);
    CHECK_INT(wrong, 0);
}

/* The block function in plain C, which machines without the SHA extensions run (and
   the test of every vector above runs the other one where the CPU has them): "abc" as
   one padded block, then random states and blocks through both. */
TEST(test_sha256_portable_block_matches) {
    static const uint32_t h0[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                                   0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
    unsigned char block[64] = {'a', 'b', 'c', 0x80}, out[32];
    uint32_t st[8], other[8], seed = 12345;
    int i, k, same = 1;
    block[63] = 24; /* the length in bits */
    memcpy(st, h0, sizeof st);
    mw__sha256_block_c(st, block);
    for (i = 0; i < 8; i++) mw__put_be(out + 4 * i, st[i], 4);
    CHECK_STR(hex(out, 32), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    for (k = 0; k < 1000; k++) {
        for (i = 0; i < 64; i++) block[i] = (unsigned char)((seed = seed * 1103515245u + 12345u) >> 16);
        for (i = 0; i < 8; i++) st[i] = other[i] = (seed = seed * 1103515245u + 12345u);
        mw__sha256_block_c(st, block);
        mw__sha256_block(other, block);
        same &= memcmp(st, other, sizeof st) == 0;
    }
    CHECK(same);
}

/* HMAC's last two compressions and the MAC's base64url, which the SHA extensions and
   SSSE3 do without the MAC leaving their registers, against plain C: random states
   and blocks through both. */
TEST(test_sha256_hmac_tail_portable_matches) {
    unsigned char block[64];
    char want[MW__MAC_TEXT_ROOM], got[MW__MAC_TEXT_ROOM];
    uint32_t inner[8], outer[8], seed = 54321;
    int i, k, same = 1;
    for (k = 0; k < 1000; k++) {
        for (i = 0; i < 64; i++) block[i] = (unsigned char)((seed = seed * 1103515245u + 12345u) >> 16);
        for (i = 0; i < 8; i++) inner[i] = (seed = seed * 1103515245u + 12345u);
        for (i = 0; i < 8; i++) outer[i] = (seed = seed * 1103515245u + 12345u);
        mw__sha256_hmac_tail_text_c(inner, outer, block, want);
        mw__sha256_hmac_tail_text(inner, outer, block, got);
        same &= memcmp(want, got, MW__MAC_TEXT) == 0;
    }
    CHECK(same);
}

static const char *sha1_hex(const void *data, size_t n) {
    unsigned char d[20];
    mw__sha1(data, n, d);
    return hex(d, sizeof d);
}

/* FIPS 180-2 appendix A.1 (NIST's SHA1.pdf example): one block. */
TEST(test_sha1_of_abc) { CHECK_STR(sha1_hex("abc", 3), "a9993e364706816aba3e25717850c26c9cd0d89d"); }

/* NIST CAVP SHAVS SHA1ShortMsg.rsp, Len = 0: a block of padding alone. */
TEST(test_sha1_of_empty_message) { CHECK_STR(sha1_hex("", 0), "da39a3ee5e6b4b0d3255bfef95601890afd80709"); }

/* FIPS 180-2 appendix A.2: 448 bits, so the length field needs a second block. */
TEST(test_sha1_of_448_bit_message) {
    const char *m = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    CHECK_STR(sha1_hex(m, strlen(m)), "84983e441c3bd26ebaae4aa1f95129e5e54670f1");
}

/* The 896-bit message of FIPS 180-2's multi-block examples; its SHA-1 digest as in the
   table of NIST-derived vectors at di-mgt.com.au/sha_testvectors.html. */
TEST(test_sha1_of_896_bit_message) {
    const char *m =
        "abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopqrst"
        "nopqrstu";
    CHECK_STR(sha1_hex(m, strlen(m)), "a49b2446a02c645bf419f995b67091253a04a259");
}

/* FIPS 180-2 appendix A.3: one million 'a'. */
TEST(test_sha1_of_million_a) {
    char *m = (char *)malloc(1000000);
    memset(m, 'a', 1000000);
    CHECK_STR(sha1_hex(m, 1000000), "34aa973cd4c4daa4f61eeb2bdbad27316534016f");
    free(m);
}

/* Lengths on each side of the padding's block boundaries (55 fits one block, 56 needs
   two; 64 and 120 likewise one block later), digests from Python's hashlib. */
TEST(test_sha1_at_block_boundaries) {
    static const struct {
        size_t n;
        const char *digest;
    } cases[] = {{55, "c1c8bbdc22796e28c0e15163d20899b65621d65a"},  {56, "c2db330f6083854c99d4b5bfb6e8f29f201be699"},
                 {63, "03f09f5b158a7a8cdad920bddc29b81c18a551f5"},  {64, "0098ba824b5c16427bd7a1122a5a442a25ec644d"},
                 {119, "ee971065aaa017e0632a8ca6c77bb3bf8b1dfc56"}, {120, "f34c1488385346a55709ba056ddd08280dd4c6d6"}};
    char m[128];
    size_t i;
    memset(m, 'a', sizeof m);
    for (i = 0; i < sizeof cases / sizeof cases[0]; i++) CHECK_STR(sha1_hex(m, cases[i].n), cases[i].digest);
}

int main(void) {
    RUN(test_sha256_of_abc);
    RUN(test_sha256_portable_block_matches);
    RUN(test_sha256_hmac_tail_portable_matches);
    RUN(test_sha256_of_empty_message);
    RUN(test_sha256_of_448_bit_message);
    RUN(test_sha256_of_896_bit_message);
    RUN(test_sha256_of_million_a_in_uneven_pieces);
    RUN(test_sha256_same_digest_for_any_split);
    RUN(test_sha1_of_abc);
    RUN(test_sha1_of_empty_message);
    RUN(test_sha1_of_448_bit_message);
    RUN(test_sha1_of_896_bit_message);
    RUN(test_sha1_of_million_a);
    RUN(test_sha1_at_block_boundaries);
    RUN(test_hmac_rfc4231_case_1);
    RUN(test_hmac_rfc4231_case_2);
    RUN(test_hmac_rfc4231_case_3);
    RUN(test_hmac_rfc4231_case_4);
    RUN(test_hmac_rfc4231_case_5_truncated_to_128_bits);
    RUN(test_hmac_rfc4231_case_6_key_longer_than_block);
    RUN(test_hmac_rfc4231_case_7_key_and_data_longer_than_block);
    RUN(test_hmac_incremental_from_a_copied_key);
    RUN(test_hmac_hashes_only_keys_longer_than_a_block);
    RUN(test_base64_rfc4648_vectors);
    RUN(test_base64url_rfc4648_vectors_without_padding);
    RUN(test_base64_alphabets_differ_in_62_and_63);
    RUN(test_base64_round_trips_all_byte_values);
    RUN(test_base64_rejects_characters_outside_the_alphabet);
    RUN(test_base64url_rejects_padding);
    RUN(test_base64_rejects_wrong_padding);
    RUN(test_base64url_rejects_length_4k_plus_1);
    RUN(test_base64_rejects_non_canonical_trailing_bits);
    RUN(test_equal_ct);
    return test_summary();
}
