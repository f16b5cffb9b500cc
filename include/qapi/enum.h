/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The name tables of the schema's enums.  scripts/qapi-gen.py emits, for
 * every enum of the qapi/ JSON files, a C enum, its QapiEnumLookup and
 * typed wrappers over the two functions below (qapi/qapi-types.h in the
 * build directory), so no C file spells an enum's names again.
 */
#ifndef QAPI_ENUM_H
#define QAPI_ENUM_H

#include <stdbool.h>
#include "qapi/error.h"

typedef struct QapiEnumLookup {
    const char *const *names;   /* indexed by the C value */
    int count;
} QapiEnumLookup;

/* The schema's name of @value; @value must be one of the enum's. */
const char *qapi_enum_name(const QapiEnumLookup *lookup, int value);
/*
 * The value named @s, or -1 with QMP's "Parameter '@member' does not
 * accept value '@s'" (the message QEMU gives for a bad enum member).
 */
int qapi_enum_parse(const QapiEnumLookup *lookup, const char *member, const char *s,
                    Error **errp);

#endif
