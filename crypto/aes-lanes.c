/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * AES-128-CBC over sectors side by side (contract in crypto/aes-lanes.h).
 *
 * An AES round instruction has a latency of several cycles but the
 * processor starts one per cycle: a single CBC chain leaves it waiting,
 * LANES independent chains keep it busy.  The key schedule follows
 * FIPS-197 with the key-generation assist instruction.
 */
#include <string.h>
#include <glib.h>
#include "crypto/aes-lanes.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>

#define LANES 8
#define SECTOR 512
#define BLOCKS (SECTOR / 16)
#define TARGET __attribute__((target("aes,sse4.1")))

bool qcrypto_aes_lanes_available(void)
{
    __builtin_cpu_init();
    return __builtin_cpu_supports("aes") && __builtin_cpu_supports("sse4.1");
}

/* One step of the schedule: @assist is the key-generation assist of the previous key. */
static inline TARGET __m128i expand_step(__m128i key, __m128i assist)
{
    assist = _mm_shuffle_epi32(assist, 0xff);
    key = _mm_xor_si128(key, _mm_slli_si128(key, 4));
    key = _mm_xor_si128(key, _mm_slli_si128(key, 4));
    key = _mm_xor_si128(key, _mm_slli_si128(key, 4));
    return _mm_xor_si128(key, assist);
}

TARGET void qcrypto_aes_lanes_expand(const uint8_t key[16],
                                     uint8_t rk[QCRYPTO_AES_LANES_KEY_SIZE])
{
    __m128i k[11];

    k[0] = _mm_loadu_si128((const __m128i *)key);
    /* The round constant is an immediate operand: one line per round. */
    k[1] = expand_step(k[0], _mm_aeskeygenassist_si128(k[0], 0x01));
    k[2] = expand_step(k[1], _mm_aeskeygenassist_si128(k[1], 0x02));
    k[3] = expand_step(k[2], _mm_aeskeygenassist_si128(k[2], 0x04));
    k[4] = expand_step(k[3], _mm_aeskeygenassist_si128(k[3], 0x08));
    k[5] = expand_step(k[4], _mm_aeskeygenassist_si128(k[4], 0x10));
    k[6] = expand_step(k[5], _mm_aeskeygenassist_si128(k[5], 0x20));
    k[7] = expand_step(k[6], _mm_aeskeygenassist_si128(k[6], 0x40));
    k[8] = expand_step(k[7], _mm_aeskeygenassist_si128(k[7], 0x80));
    k[9] = expand_step(k[8], _mm_aeskeygenassist_si128(k[8], 0x1b));
    k[10] = expand_step(k[9], _mm_aeskeygenassist_si128(k[9], 0x36));
    for (int i = 0; i < 11; i++) {
        _mm_storeu_si128((__m128i *)(rk + 16 * i), k[i]);
    }
    /* The schedule stays in registers and on this stack frame: clear the copies. */
    memset(k, 0, sizeof(k));
    __asm__ volatile("" : : "r"(k) : "memory");
}

/*
 * @n (1..LANES) sectors from @sector at @buf.  With @n a constant the
 * compiler keeps every lane in a register.
 */
static inline __attribute__((always_inline)) TARGET void
encrypt_lanes(const __m128i *k, uint64_t sector, uint8_t *buf, const int n)
{
    __m128i c[LANES];

    /* Unrolled, so that the lanes live in registers (GCC does not at -O2). */
    _Pragma("GCC unroll 8")
    for (int l = 0; l < n; l++) {
        c[l] = _mm_set_epi64x(0, (long long)(sector + l));
    }
    for (int b = 0; b < BLOCKS; b++) {
        _Pragma("GCC unroll 8")
        for (int l = 0; l < n; l++) {
            __m128i p = _mm_loadu_si128((const __m128i *)(buf + l * SECTOR + b * 16));
            c[l] = _mm_xor_si128(_mm_xor_si128(c[l], p), k[0]);
        }
        _Pragma("GCC unroll 9")
        for (int r = 1; r < 10; r++) {
            _Pragma("GCC unroll 8")
            for (int l = 0; l < n; l++) {
                c[l] = _mm_aesenc_si128(c[l], k[r]);
            }
        }
        _Pragma("GCC unroll 8")
        for (int l = 0; l < n; l++) {
            c[l] = _mm_aesenclast_si128(c[l], k[10]);
            _mm_storeu_si128((__m128i *)(buf + l * SECTOR + b * 16), c[l]);
        }
    }
}

TARGET void qcrypto_aes_lanes_cbc_encrypt(const uint8_t rk[QCRYPTO_AES_LANES_KEY_SIZE],
                                          uint64_t sector, uint8_t *buf, size_t nsectors)
{
    __m128i k[11];

    for (int i = 0; i < 11; i++) {
        k[i] = _mm_loadu_si128((const __m128i *)(rk + 16 * i));
    }
    for (; nsectors >= LANES; nsectors -= LANES, sector += LANES, buf += LANES * SECTOR) {
        encrypt_lanes(k, sector, buf, LANES);
    }
    /* The rest, fewer than LANES: four, two, one at a time. */
    if (nsectors & 4) {
        encrypt_lanes(k, sector, buf, 4);
        sector += 4, buf += 4 * SECTOR;
    }
    if (nsectors & 2) {
        encrypt_lanes(k, sector, buf, 2);
        sector += 2, buf += 2 * SECTOR;
    }
    if (nsectors & 1) {
        encrypt_lanes(k, sector, buf, 1);
    }
    memset(k, 0, sizeof(k));
    __asm__ volatile("" : : "r"(k) : "memory");
}

#else

bool qcrypto_aes_lanes_available(void)
{
    return false;
}

void qcrypto_aes_lanes_expand(const uint8_t key[16], uint8_t rk[QCRYPTO_AES_LANES_KEY_SIZE])
{
    g_assert_not_reached();
}

void qcrypto_aes_lanes_cbc_encrypt(const uint8_t rk[QCRYPTO_AES_LANES_KEY_SIZE],
                                   uint64_t sector, uint8_t *buf, size_t nsectors)
{
    g_assert_not_reached();
}

#endif
