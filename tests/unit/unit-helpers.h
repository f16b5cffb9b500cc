/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Set-up steps that several unit tests share (linked into each of them). */
#ifndef TESTS_UNIT_HELPERS_H
#define TESTS_UNIT_HELPERS_H

/* Creates secret object @id holding @data, as object-add would; aborts on failure. */
void unit_add_secret(const char *id, const char *data);

#endif
