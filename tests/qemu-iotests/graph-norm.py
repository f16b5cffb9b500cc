# SPDX-License-Identifier: GPL-2.0-or-later
# x-debug-query-block-graph answers as sorted lines: nodes by type and name,
# edges as parent -role-> child, with the permissions unless an argument is
# given (then only the shape, to compare with QEMU 7.2).
import json, sys
perms = len(sys.argv) < 2
for line in sys.stdin:
    try:
        msg = json.loads(line)
    except ValueError:
        continue
    ret = msg.get("return")
    if not isinstance(ret, dict) or "nodes" not in ret:
        if "error" in msg:
            print(msg["error"]["desc"])
        continue
    names = {n["id"]: "%s %s" % (n["type"], n["name"] or '""') for n in ret["nodes"]}
    for n in sorted(names.values()):
        print("node", n)
    out = []
    for e in ret["edges"]:
        s = "%s -%s-> %s" % (names[e["parent"]], e["name"], names[e["child"]])
        if perms:
            s += " perm=%s shared=%s" % (",".join(sorted(e["perm"])), ",".join(sorted(e["shared-perm"])))
        out.append(s)
    for s in sorted(out):
        print("edge", s)
    print("--")
