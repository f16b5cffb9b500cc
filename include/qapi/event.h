/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Where QMP events go.  Code that has something to report calls the
 * generated emitter (qapi/qapi-events.h: qapi_event_send_<event>(...)),
 * which builds the event's data as the schema declares it and hands it
 * here.  The monitor registers itself as the sink when a program that has
 * one starts; in qemu-img and qemu-io nothing registers and events are
 * dropped.  So block/ and hw/ report events without linking monitor/.
 */
#ifndef QAPI_EVENT_H
#define QAPI_EVENT_H

#include "qobject/qdict.h"

/* Receives every event; takes the reference to @data (NULL: no data). */
typedef void (*QapiEventSink)(const char *event, QDict *data);

/* Installs @sink in place of any earlier one (NULL: drop events). */
void qapi_event_set_sink(QapiEventSink sink);

/* For the generated emitters only: passes @data (stolen) to the sink. */
void qapi_event_deliver(const char *event, QDict *data);

#endif
