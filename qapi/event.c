// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The one sink of QMP events.  Only the generated emitters deliver here,
 * so every event sent is one the schema declares, with its members.
 */
#include "qapi/event.h"

static QapiEventSink event_sink;

void qapi_event_set_sink(QapiEventSink sink)
{
    event_sink = sink;
}

void qapi_event_deliver(const char *event, QDict *data)
{
    if (event_sink) {
        event_sink(event, data);
    } else {
        qobject_unref(data);
    }
}
