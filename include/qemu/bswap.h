/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Big- and little-endian loads and stores on unaligned memory. */
#ifndef QEMU_BSWAP_H
#define QEMU_BSWAP_H

#include <stdint.h>
#include <string.h>
#include <endian.h>

static inline uint16_t ldw_be_p(const void *p) { uint16_t v; memcpy(&v, p, 2); return be16toh(v); }
static inline uint32_t ldl_be_p(const void *p) { uint32_t v; memcpy(&v, p, 4); return be32toh(v); }
static inline uint64_t ldq_be_p(const void *p) { uint64_t v; memcpy(&v, p, 8); return be64toh(v); }
static inline uint16_t lduw_le_p(const void *p) { uint16_t v; memcpy(&v, p, 2); return le16toh(v); }
static inline uint32_t ldl_le_p(const void *p) { uint32_t v; memcpy(&v, p, 4); return le32toh(v); }
static inline uint64_t ldq_le_p(const void *p) { uint64_t v; memcpy(&v, p, 8); return le64toh(v); }
static inline void stw_be_p(void *p, uint16_t v) { v = htobe16(v); memcpy(p, &v, 2); }
static inline void stl_be_p(void *p, uint32_t v) { v = htobe32(v); memcpy(p, &v, 4); }
static inline void stq_be_p(void *p, uint64_t v) { v = htobe64(v); memcpy(p, &v, 8); }
static inline void stw_le_p(void *p, uint16_t v) { v = htole16(v); memcpy(p, &v, 2); }
static inline void stl_le_p(void *p, uint32_t v) { v = htole32(v); memcpy(p, &v, 4); }
static inline void stq_le_p(void *p, uint64_t v) { v = htole64(v); memcpy(p, &v, 8); }

#endif
