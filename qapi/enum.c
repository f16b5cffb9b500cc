// SPDX-License-Identifier: GPL-2.0-or-later
/* Lookups over the name tables qapi-gen.py emits for the schema's enums. */
#include <string.h>
#include <glib.h>

#include "qapi/enum.h"

const char *qapi_enum_name(const QapiEnumLookup *lookup, int value)
{
    g_assert(value >= 0 && value < lookup->count);
    return lookup->names[value];
}

int qapi_enum_parse(const QapiEnumLookup *lookup, const char *member, const char *s,
                    Error **errp)
{
    for (int i = 0; i < lookup->count; i++) {
        if (!strcmp(lookup->names[i], s)) {
            return i;
        }
    }
    error_setg(errp, "Parameter '%s' does not accept value '%s'", member, s);
    return -1;
}
