/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Migration of dirty bitmaps (the dirty-bitmaps migration capability) and
 * the block-bitmap-mapping migration parameter.
 *
 * The source describes every bitmap it migrates in one section of the
 * stream (see include/system/migration.h), sent after it stopped and
 * before it lets go of its images:
 *
 *   {"bitmaps": [{"node": NODE, "name": BITMAP, "granularity": N,
 *                 "persistent": bool, "enabled": bool,
 *                 "dirty": [[offset, bytes], ...]}, ...]}
 *
 * NODE and BITMAP are the aliases the source's mapping gives, or without
 * one the node's drive name (else its node name) and the bitmap's name.
 * The destination maps them back with its own mapping, if it has one.
 *
 * In postcopy the section is split in two (bitmap_mig_split_postcopy()):
 * before the switch-over, the same list with every "dirty" empty, which
 * creates the bitmaps as the destination starts to run, so that they
 * record what the guest writes from then on; after it,
 *
 *   {"bitmaps": [{"node": NODE, "name": BITMAP, "dirty": [...]}, ...],
 *    "postcopy-data": true}
 *
 * whose ranges are added to the bitmaps the first part created.
 */
#ifndef SYSTEM_BITMAP_MIGRATION_H
#define SYSTEM_BITMAP_MIGRATION_H

#include <stdbool.h>
#include <jansson.h>
#include "qapi/error.h"
#include "qapi/qapi-types.h"

/* migrate-set-parameters' block-bitmap-mapping: checked, then kept (a copy). */
bool bitmap_mig_set_mapping(const BitmapMigrationNodeAliasList *mapping, Error **errp);
/* The mapping set (a new reference), or NULL when none was. */
json_t *bitmap_mig_get_mapping(void);
/* HMP "info migrate_parameters"' lines for it ("" when none). Caller frees. */
char *bitmap_mig_mapping_text(void);

/*
 * The source.  bitmap_mig_check(): the bitmaps would migrate (at the
 * start).  bitmap_mig_save(): the section's payload, at the switch-over;
 * the persistent bitmaps it takes are no longer persistent here, so that
 * letting go of the images does not store them (the destination owns
 * them now).  bitmap_mig_source_restore(): the source takes its images
 * back (a failed migration, or cont after one): they are persistent again.
 */
bool bitmap_mig_check(Error **errp);
json_t *bitmap_mig_save(Error **errp);
void bitmap_mig_source_restore(void);

/*
 * The destination, once its images are active: creates the bitmaps the
 * section describes.  An error (a node or alias it cannot map, a name
 * taken) is reported and drops the bitmaps migrated so far; the
 * migration itself still completes, as in QEMU.  A "postcopy-data"
 * section adds its ranges to the bitmaps the section before created; one
 * it cannot place is reported, and the bitmaps keep what they have.
 */
void bitmap_mig_load(json_t *section);
/*
 * The destination, postcopy: the bitmaps the last section created are busy
 * (QEMU's "in use by another operation" for the user) yet record the
 * guest's writes until their contents came.
 */
void bitmap_mig_incoming_set_busy(bool busy);
/* The destination, a postcopy stream cut short: drops the bitmaps it created. */
void bitmap_mig_incoming_cancel(void);
/* The source, in postcopy: @section as the two parts above (new references). */
void bitmap_mig_split_postcopy(json_t *section, json_t **meta, json_t **data);

void bitmap_mig_cleanup(void);

#endif
