# SPDX-License-Identifier: GPL-2.0-or-later
# Shared by iotests 542-545: a QMP transcript reduced to what removable
# media change (query-block's drives in one line each, HMP text as is),
# so that this tree's and QEMU 7.2's transcripts can be compared.
import json
import re
import sys

for line in sys.stdin:
    try:
        m = json.loads(line)
    except ValueError:
        print(line, end="")
        continue
    if "QMP" in m:
        continue
    m.pop("timestamp", None)
    ret = m.get("return")
    if isinstance(ret, list):
        for d in sorted(ret, key=lambda d: (d["device"], d.get("qdev", ""))):
            i = d.get("inserted")
            print("  drive '%s' qdev=%s removable=%s locked=%s tray_open=%s io-status=%s %s" % (
                d["device"], d.get("qdev"), d["removable"], d["locked"],
                d.get("tray_open", "-"), d.get("io-status", "-"),
                "inserted=%s ro=%s %s" % (re.sub("#block[0-9]+", "#blockN", i["node-name"]),
                                          i["ro"], i["image"]["filename"])
                if i else "empty"))
    elif isinstance(ret, str):
        print(re.sub("#block[0-9]+", "#blockN", ret.replace("\r", "")), end="")
    else:
        print(json.dumps(m, sort_keys=True))
