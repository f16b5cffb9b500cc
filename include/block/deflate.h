/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Compressed clusters of qcow and qcow2: raw deflate streams (no zlib or
 * gzip header), one per cluster.  Both formats store them alike, so both
 * drivers share these two functions.
 */
#ifndef BLOCK_DEFLATE_H
#define BLOCK_DEFLATE_H

#include <stdint.h>
#include <sys/types.h>
#include "qapi/error.h"
#include "block/block.h"

/*
 * Whether a compressed write of [@offset, @offset + @bytes) may go ahead on
 * @bs (an image of @image_len bytes with clusters of @cluster_size): not on
 * an encrypted image, and whole clusters only (the last one may end at the
 * end of the image).  Checked before anything is written, so a refused
 * request changes nothing.  Returns 0 or -errno with @errp set.
 */
int block_compressed_write_check(BlockDriverState *bs, bool encrypted, int64_t offset,
                                 int64_t bytes, int64_t cluster_size, int64_t image_len,
                                 Error **errp);

/*
 * Compresses one cluster of @cluster_size bytes, of which the first @len
 * come from @buf and the rest are zeroes (the last cluster of an image
 * may be partial), into @out (@cluster_size bytes).  Returns the
 * compressed length; 0 when compression would not save anything (the
 * caller stores the cluster as it is); -errno with @errp set on failure.
 */
int64_t block_deflate_cluster(const uint8_t *buf, int64_t len, int64_t cluster_size,
                              uint8_t *out, Error **errp);

/*
 * Decompresses @in (@in_len bytes) into exactly @out_len bytes at @out.
 * Returns 0; -ENOMEM with @errp set when zlib cannot start; -EIO with
 * @errp untouched when the stream is broken or too short, so that the
 * caller names the image and the cluster in its own error.
 */
int block_inflate_cluster(const uint8_t *in, int64_t in_len, uint8_t *out,
                          int64_t out_len, Error **errp);

#endif
