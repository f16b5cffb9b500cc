/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * zstd-compressed clusters of qcow2 (compression type 1): one zstd frame
 * per cluster, made and read with Debian's libzstd.
 */
#ifndef BLOCK_COMPRESS_ZSTD_H
#define BLOCK_COMPRESS_ZSTD_H

#include <stdint.h>
#include "qapi/error.h"

/*
 * Compresses one cluster of @cluster_size bytes (the first @len from @buf,
 * the rest zeroes) into @out (@cluster_size bytes), as
 * block_deflate_cluster() does: returns the compressed length, 0 when
 * compression saves nothing, -errno with @errp set on failure.
 */
int64_t block_zstd_compress_cluster(const uint8_t *buf, int64_t len, int64_t cluster_size,
                                    uint8_t *out, Error **errp);

/*
 * Decompresses @in (@in_len bytes, possibly followed by padding up to the
 * next sector) into exactly @out_len bytes.  Returns 0; -ENOMEM with
 * @errp set when zstd cannot start; -EIO with @errp untouched when the
 * data is broken or too short.
 */
int block_zstd_decompress_cluster(const uint8_t *in, int64_t in_len, uint8_t *out,
                                  int64_t out_len, Error **errp);

#endif
