# SPDX-License-Identifier: GPL-2.0-or-later
# Helpers of the qemu-io tests (100-129), sourced after common.rc.

# Drops the image path from qemu-io output so that runs on different
# copies of an image print the same.
_filter_io_img()
{
    sed -e "s#$1#IMG#g"
}

# _io_crosscheck FMT IMG ARGS...: runs "qemu-io -f FMT ARGS... IMG" with
# this tree's qemu-io on IMG and with QEMU 7.2's on a copy of it, then
# prints this tree's filtered output and whether QEMU printed the same
# lines (stdout and stderr compared separately, exit statuses too).
_io_crosscheck()
{
    local fmt=$1 img=$2 ref=$TEST_DIR/ref-copy.$1
    shift 2
    cp "$img" "$ref"
    "$QEMU_IO" -f "$fmt" "$@" "$img" > "$TEST_DIR/ours.out" 2> "$TEST_DIR/ours.err"
    local rc_ours=$?
    "$QEMU_IO_REF" -f "$fmt" "$@" "$ref" > "$TEST_DIR/ref.out" 2> "$TEST_DIR/ref.err"
    local rc_ref=$?
    for f in ours ref; do
        local i=$img
        [ $f = ref ] && i=$ref
        _filter_io_img "$i" < "$TEST_DIR/$f.out" | _filter_qemu_io > "$TEST_DIR/$f.out.f"
        # QEMU names itself by its full path in getopt messages.
        _filter_io_img "$i" < "$TEST_DIR/$f.err" | sed -E 's#^[^ :]*qemu-io: #qemu-io: #' \
            > "$TEST_DIR/$f.err.f"
    done
    cat "$TEST_DIR/ours.out.f"
    sed 's/^/stderr: /' "$TEST_DIR/ours.err.f"
    echo "exit status $rc_ours"
    if diff -u "$TEST_DIR/ref.out.f" "$TEST_DIR/ours.out.f" > "$TEST_DIR/diff" &&
       diff -u "$TEST_DIR/ref.err.f" "$TEST_DIR/ours.err.f" >> "$TEST_DIR/diff" &&
       [ $rc_ours = $rc_ref ]; then
        echo "QEMU 7.2: same output"
    else
        echo "QEMU 7.2: DIFFERENT output (exit $rc_ref)"
        cat "$TEST_DIR/diff"
    fi
    rm -f "$ref"
}
