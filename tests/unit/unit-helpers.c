/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <glib.h>
#include "qom/object.h"
#include "unit-helpers.h"

void unit_add_secret(const char *id, const char *data)
{
    QDict *d = qdict_new();

    qdict_put_str(d, "qom-type", "secret");
    qdict_put_str(d, "id", id);
    qdict_put_str(d, "data", data);
    g_assert_true(user_creatable_add(d, &error_abort));
    qobject_unref(d);
}
