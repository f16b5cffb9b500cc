// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The qcow2 snapshot table in one place: the byte layout of an entry
 * (docs/qcow2.md, "Snapshot table"), the decoder that turns an entry's
 * bytes into a Qcow2SnapshotEntry with the bounds checks an untrusted
 * table needs (QEMU 7.2's messages), and the encoder that turns entries
 * back into bytes.  Nothing else in the driver knows an entry offset:
 * listing, create, goto, delete, amend and the check go through here.
 */
#include <errno.h>
#include <inttypes.h>
#include <string.h>
#include <glib.h>

#include "qcow2.h"
#include "qemu/cutils.h"

/* The fields of an entry, in file order; the last three live in its extra data. */
typedef enum SnapshotField {
    SNF_L1_TABLE_OFFSET,
    SNF_L1_SIZE,
    SNF_ID_LEN,
    SNF_NAME_LEN,
    SNF_DATE_SEC,
    SNF_DATE_NSEC,
    SNF_VM_CLOCK_NSEC,
    SNF_VM_STATE_SIZE_32,
    SNF_EXTRA_SIZE,
    SNF_VM_STATE_SIZE,
    SNF_DISK_SIZE,
    SNF_ICOUNT,
    SNF__MAX
} SnapshotField;

/* Offsets from the entry's start; the fixed part ends at QCOW2_SNAPSHOT_MIN_ENTRY. */
static const Qcow2FieldLayout snapshot_layout[SNF__MAX] = {
    [SNF_L1_TABLE_OFFSET]  = { 0, 8 },
    [SNF_L1_SIZE]          = { 8, 4 },
    [SNF_ID_LEN]           = { 12, 2 },
    [SNF_NAME_LEN]         = { 14, 2 },
    [SNF_DATE_SEC]         = { 16, 4 },
    [SNF_DATE_NSEC]        = { 20, 4 },
    [SNF_VM_CLOCK_NSEC]    = { 24, 8 },
    [SNF_VM_STATE_SIZE_32] = { 32, 4 },
    [SNF_EXTRA_SIZE]       = { 36, 4 },
    [SNF_VM_STATE_SIZE]    = { 40, 8 },
    [SNF_DISK_SIZE]        = { 48, 8 },
    [SNF_ICOUNT]           = { 56, 8 },
};

static uint64_t get(const uint8_t *entry, SnapshotField f)
{
    return qcow2_field_get(entry, snapshot_layout[f]);
}

static void put(uint8_t *entry, SnapshotField f, uint64_t v)
{
    qcow2_field_put(entry, snapshot_layout[f], v);
}

/*
 * Whether an entry with @extra_size bytes of extra data holds field @f:
 * older writers wrote less extra data, and a field they did not write
 * keeps its fallback (see Qcow2SnapshotEntry).
 */
static bool extra_has(uint32_t extra_size, SnapshotField f)
{
    return QCOW2_SNAPSHOT_MIN_ENTRY + (uint64_t)extra_size >=
           snapshot_layout[f].off + snapshot_layout[f].len;
}

static uint64_t entry_len(uint32_t extra_size, uint32_t id_len, uint32_t name_len)
{
    /* Entries start 8-byte aligned: each is padded up to the next. */
    return QEMU_ALIGN_UP(QCOW2_SNAPSHOT_MIN_ENTRY + (uint64_t)extra_size + id_len + name_len, 8);
}

size_t qcow2_snapshot_entry_need(const uint8_t *buf, size_t avail)
{
    uint32_t extra;

    if (avail < QCOW2_SNAPSHOT_MIN_ENTRY) {
        return QCOW2_SNAPSHOT_MIN_ENTRY;
    }
    extra = get(buf, SNF_EXTRA_SIZE);
    if (extra > QCOW2_SNAPSHOT_MAX_EXTRA) {
        /* Refused by the decoder before anything past the fixed part is read. */
        return QCOW2_SNAPSHOT_MIN_ENTRY;
    }
    return QCOW2_SNAPSHOT_MIN_ENTRY + extra + get(buf, SNF_ID_LEN) + get(buf, SNF_NAME_LEN);
}

/* A string of @len bytes as stored (NUL bytes inside kept), NUL-terminated for printing. */
static char *copy_str(const uint8_t *p, uint16_t len)
{
    char *s = g_malloc(len + 1);

    memcpy(s, p, len);
    s[len] = 0;
    return s;
}

int qcow2_snapshot_entry_decode(const uint8_t *buf, size_t avail, const char *filename,
                                uint32_t index, Qcow2SnapshotEntry *e, size_t *len,
                                Error **errp)
{
    const uint8_t *var;

    memset(e, 0, sizeof(*e));
    if (avail < QCOW2_SNAPSHOT_MIN_ENTRY) {
        goto beyond;
    }
    e->extra_size = get(buf, SNF_EXTRA_SIZE);
    if (e->extra_size > QCOW2_SNAPSHOT_MAX_EXTRA) {
        /* A hostile size would make every reader allocate and read it. */
        error_setg(errp, "Snapshot %u of '%s' has too much extra data (%u bytes)",
                   index, filename, e->extra_size);
        e->extra_size = 0;
        return -EFBIG;
    }
    e->id_len = get(buf, SNF_ID_LEN);
    e->name_len = get(buf, SNF_NAME_LEN);
    if (avail - QCOW2_SNAPSHOT_MIN_ENTRY < (uint64_t)e->extra_size + e->id_len + e->name_len) {
        goto beyond;
    }
    e->l1_table_offset = get(buf, SNF_L1_TABLE_OFFSET);
    e->l1_size = get(buf, SNF_L1_SIZE);
    e->date_sec = get(buf, SNF_DATE_SEC);
    e->date_nsec = get(buf, SNF_DATE_NSEC);
    e->vm_clock_nsec = get(buf, SNF_VM_CLOCK_NSEC);
    e->vm_state_size_32 = get(buf, SNF_VM_STATE_SIZE_32);
    e->vm_state_size = extra_has(e->extra_size, SNF_VM_STATE_SIZE) ?
                       get(buf, SNF_VM_STATE_SIZE) : e->vm_state_size_32;
    e->disk_size = extra_has(e->extra_size, SNF_DISK_SIZE) ? get(buf, SNF_DISK_SIZE) : 0;
    e->icount = extra_has(e->extra_size, SNF_ICOUNT) ? get(buf, SNF_ICOUNT) : UINT64_MAX;
    /* Kept whole: extra data of newer writers is written back as it was. */
    e->extra = g_memdup2(buf + QCOW2_SNAPSHOT_MIN_ENTRY, e->extra_size);
    var = buf + QCOW2_SNAPSHOT_MIN_ENTRY + e->extra_size;
    e->id_str = copy_str(var, e->id_len);
    e->name = copy_str(var + e->id_len, e->name_len);
    *len = entry_len(e->extra_size, e->id_len, e->name_len);
    return 0;

beyond:
    error_setg(errp, "The snapshot table of '%s' lies beyond the end of the file", filename);
    return -EINVAL;
}

size_t qcow2_snapshot_entry_encoded_len(const Qcow2SnapshotEntry *e)
{
    return entry_len(e->extra_size, e->id_len, e->name_len);
}

void qcow2_snapshot_entry_encode(const Qcow2SnapshotEntry *e, uint8_t *buf)
{
    uint8_t *var = buf + QCOW2_SNAPSHOT_MIN_ENTRY + e->extra_size;

    memset(buf, 0, qcow2_snapshot_entry_encoded_len(e));
    put(buf, SNF_L1_TABLE_OFFSET, e->l1_table_offset);
    put(buf, SNF_L1_SIZE, e->l1_size);
    put(buf, SNF_ID_LEN, e->id_len);
    put(buf, SNF_NAME_LEN, e->name_len);
    put(buf, SNF_DATE_SEC, e->date_sec);
    put(buf, SNF_DATE_NSEC, e->date_nsec);
    put(buf, SNF_VM_CLOCK_NSEC, e->vm_clock_nsec);
    put(buf, SNF_VM_STATE_SIZE_32, e->vm_state_size_32);
    put(buf, SNF_EXTRA_SIZE, e->extra_size);
    if (e->extra) {
        memcpy(buf + QCOW2_SNAPSHOT_MIN_ENTRY, e->extra, e->extra_size);
    }
    /* The known fields override the kept bytes: they are what the driver changes. */
    if (extra_has(e->extra_size, SNF_VM_STATE_SIZE)) {
        put(buf, SNF_VM_STATE_SIZE, e->vm_state_size);
    }
    if (extra_has(e->extra_size, SNF_DISK_SIZE)) {
        put(buf, SNF_DISK_SIZE, e->disk_size);
    }
    if (extra_has(e->extra_size, SNF_ICOUNT)) {
        put(buf, SNF_ICOUNT, e->icount);
    }
    memcpy(var, e->id_str, e->id_len);
    memcpy(var + e->id_len, e->name, e->name_len);
}

uint8_t *qcow2_snapshot_table_encode(GPtrArray *entries, size_t *len)
{
    size_t total = 0, pos = 0;
    uint8_t *buf;

    for (guint i = 0; i < entries->len; i++) {
        total += qcow2_snapshot_entry_encoded_len(g_ptr_array_index(entries, i));
    }
    buf = g_malloc0(MAX(total, 1));
    for (guint i = 0; i < entries->len; i++) {
        const Qcow2SnapshotEntry *e = g_ptr_array_index(entries, i);

        qcow2_snapshot_entry_encode(e, buf + pos);
        pos += qcow2_snapshot_entry_encoded_len(e);
    }
    *len = total;
    return buf;
}

bool qcow2_snapshot_entry_has_disk_size(const Qcow2SnapshotEntry *e)
{
    return extra_has(e->extra_size, SNF_DISK_SIZE);
}

void qcow2_snapshot_entry_set_extra_size(Qcow2SnapshotEntry *e, uint32_t extra_size)
{
    e->extra = g_realloc(e->extra, MAX(extra_size, 1));
    if (extra_size > e->extra_size) {
        memset(e->extra + e->extra_size, 0, extra_size - e->extra_size);
    }
    e->extra_size = extra_size;
}

void qcow2_snapshot_entry_info(const Qcow2SnapshotEntry *e, QEMUSnapshotInfo *info)
{
    memset(info, 0, sizeof(*info));
    /* QEMUSnapshotInfo's fixed buffers cut longer strings, as QEMU's listing does. */
    memcpy(info->id_str, e->id_str, MIN(e->id_len, sizeof(info->id_str) - 1));
    memcpy(info->name, e->name, MIN(e->name_len, sizeof(info->name) - 1));
    info->vm_state_size = e->vm_state_size;
    info->date_sec = e->date_sec;
    info->date_nsec = e->date_nsec;
    info->vm_clock_nsec = e->vm_clock_nsec;
    info->icount = e->icount;
}

void qcow2_snapshot_entry_free(gpointer p)
{
    Qcow2SnapshotEntry *e = p;

    if (e) {
        g_free(e->extra);
        g_free(e->id_str);
        g_free(e->name);
        g_free(e);
    }
}
