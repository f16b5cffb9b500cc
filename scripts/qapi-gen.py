#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Reads the QMP schema (qapi/qapi-schema.json and the files it includes),
# checks it, and writes one of:
#   --c OUT.c      the schema as strict JSON (the dispatcher checks arguments
#                  against it at run time) and the answer of query-qmp-schema
#                  (QEMU's introspection format);
#   --gen OUTDIR   C code compiled from the schema: qapi-types.h/.c (a C enum,
#                  a name table and a parser for every enum),
#                  qapi-events.h/.c (one typed emitter per event) and
#                  qapi-commands.h/.c (every command's handler prototype, the
#                  marshalling into typed handlers, and the command table);
#   --doc OUT.md   the QMP reference in Markdown.
#
#   qapi-gen.py --c OUT.c SCHEMA
#   qapi-gen.py --gen OUTDIR SCHEMA
#   qapi-gen.py --doc OUT.md SCHEMA

import ast
import contextlib
import json
import os
import re
import sys

BUILTIN = {'str', 'int', 'uint32', 'size', 'bool', 'number', 'any', 'null'}
META = ('command', 'struct', 'union', 'alternate', 'enum', 'event', 'include')
# The kinds of named types (the other metas are commands, events, includes).
TYPE_METAS = ('struct', 'union', 'alternate', 'enum')
ALLOWED = {
    # 'boxed': 'data' names a struct or union whose members are the arguments.
    # 'features': names a management application looks for in
    # query-qmp-schema (e.g. device_add's json-cli); each is documented.
    'command': {'command', 'data', 'returns', 'gen', 'boxed', 'features'},
    'struct': {'struct', 'data'},
    # A flat union: the members of 'base', then those of the struct that
    # 'data' names for the value of the enum member 'discriminator'.
    'union': {'union', 'base', 'discriminator', 'data'},
    # One of several types, told apart by the JSON type of the value:
    # 'data' maps a branch name to a type; no two branches share a JSON type.
    'alternate': {'alternate', 'data'},
    'enum': {'enum', 'data'},
    'event': {'event', 'data'},
    'include': {'include'},
}


class SchemaError(Exception):
    pass


def split_expressions(text, fname):
    """Yields (line, doc_lines, expression_text) for each top-level {...}."""
    doc = None
    pending_doc = None
    depth = 0
    start = None
    buf = []
    in_str = False
    for lineno, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if depth == 0:
            if stripped == '##':
                if doc is None:
                    doc = []
                else:
                    if doc and doc[0].strip().startswith('= '):
                        yield lineno, doc, None
                    else:
                        pending_doc = doc
                    doc = None
                continue
            if doc is not None:
                if not stripped.startswith('#'):
                    raise SchemaError('%s:%d: unterminated doc comment' % (fname, lineno))
                doc.append(stripped[2:] if stripped.startswith('# ') else stripped[1:])
                continue
            if not stripped or stripped.startswith('#'):
                continue
        out = []
        for ch in line:
            if in_str:
                out.append(ch)
                if ch == "'":
                    in_str = False
                continue
            if ch == '#':
                break
            if ch == "'":
                in_str = True
            elif ch in '{[':
                if depth == 0:
                    start = lineno
                depth += 1
            elif ch in '}]':
                depth -= 1
                if depth < 0:
                    raise SchemaError('%s:%d: unbalanced brackets' % (fname, lineno))
            out.append(ch)
        if in_str:
            raise SchemaError('%s:%d: string runs past the end of the line' % (fname, lineno))
        buf.append(''.join(out))
        if depth == 0:
            expr = '\n'.join(buf).strip()
            buf = []
            if expr:
                yield start, pending_doc, expr
            pending_doc = None
    if depth:
        raise SchemaError('%s: unbalanced brackets at end of file' % fname)


def parse_doc(lines, name, fname, line):
    """Splits a doc block into its title line, body and @member descriptions."""
    if not lines:
        raise SchemaError('%s:%d: %s has no documentation' % (fname, line, name))
    first = lines[0].strip()
    if first != '@%s:' % name:
        raise SchemaError('%s:%d: doc comment should start with "@%s:"' % (fname, line, name))
    body, members, cur = [], {}, None
    for l in lines[1:]:
        s = l.strip()
        if s.startswith('@') and ':' in s:
            key, _, rest = s[1:].partition(':')
            cur = key
            members[cur] = rest.strip()
        elif cur is not None and s and l.startswith('    '):
            members[cur] += ' ' + s
        else:
            cur = None
            body.append(l.rstrip())
    while body and not body[0]:
        body.pop(0)
    while body and not body[-1]:
        body.pop()
    return {'body': '\n'.join(body), 'members': members}


def load(path, seen, exprs, sections):
    path = os.path.normpath(path)
    if path in seen:
        return
    seen.add(path)
    with open(path, encoding='utf-8') as f:
        text = f.read()
    for line, doc, src in split_expressions(text, path):
        if src is None:
            sections.append((len(exprs), doc[0].strip()[2:]))
            continue
        # JSON's true/false outside strings become Python literals.
        parts = src.split("'")
        for i in range(0, len(parts), 2):
            parts[i] = re.sub(r'\btrue\b', 'True', re.sub(r'\bfalse\b', 'False', parts[i]))
        src = "'".join(parts)
        try:
            e = ast.literal_eval(src)
        except (ValueError, SyntaxError) as err:
            raise SchemaError('%s:%d: not a schema expression: %s' % (path, line, err))
        if not isinstance(e, dict):
            raise SchemaError('%s:%d: expected an object' % (path, line))
        metas = [m for m in META if m in e]
        if len(metas) != 1:
            raise SchemaError('%s:%d: expected exactly one of %s' % (path, line, ', '.join(META)))
        meta = metas[0]
        extra = set(e) - ALLOWED[meta]
        if extra:
            raise SchemaError('%s:%d: unknown key(s) %s' % (path, line, ', '.join(sorted(extra))))
        if meta == 'include':
            inc = os.path.join(os.path.dirname(path), e['include'])
            if not os.path.exists(inc):
                raise SchemaError('%s:%d: included file %s does not exist'
                                  % (path, line, e['include']))
            load(inc, seen, exprs, sections)
            continue
        e['doc'] = parse_doc(doc or [], e[meta], path, line)
        e['meta'] = meta
        e['name'] = e.pop(meta)
        e['where'] = '%s:%d' % (os.path.basename(path), line)
        split_defaults(e)
        exprs.append(e)


def split_defaults(e):
    """An optional member may be written {'type': T, 'default': V}: the
    value its handler sees when the client leaves it out.  The default goes
    to e['defaults'] and the member keeps only its type, so the checks,
    the introspection (which, as QEMU's, shows no defaults) and the run-time
    table see plain types."""
    data = e.get('data')
    e['defaults'] = {}
    if e['meta'] not in ('command', 'struct', 'event') or not isinstance(data, dict):
        return
    for key, t in list(data.items()):
        if not isinstance(t, dict):
            continue
        if set(t) != {'type', 'default'}:
            raise SchemaError('%s: member %s: a member object has exactly the keys '
                              'type and default' % (e['where'], key))
        if not key.startswith('*'):
            raise SchemaError('%s: member %s: only an optional member has a default'
                              % (e['where'], key))
        data[key] = t['type']
        e['defaults'][key[1:]] = t['default']



def check(exprs):
    names = {}
    for e in exprs:
        if e['name'] in names:
            raise SchemaError('%s: %s already defined at %s' % (e['where'], e['name'],
                                                               names[e['name']]['where']))
        names[e['name']] = e
    types = {e['name']: e for e in exprs if e['meta'] in TYPE_METAS}

    def check_type(t, where):
        if isinstance(t, list):
            if len(t) != 1:
                raise SchemaError('%s: a list type has exactly one element type' % where)
            check_type(t[0], where)
        elif not isinstance(t, str) or (t not in BUILTIN and t not in types):
            raise SchemaError('%s: unknown type %r' % (where, t))

    def check_default(t, v, where):
        ok = {'str': lambda: isinstance(v, str),
              'bool': lambda: isinstance(v, bool),
              'number': lambda: isinstance(v, (int, float)) and not isinstance(v, bool),
              'int': lambda: isinstance(v, int) and not isinstance(v, bool),
              'size': lambda: isinstance(v, int) and not isinstance(v, bool) and v >= 0,
              'uint32': lambda: isinstance(v, int) and not isinstance(v, bool)
                                and 0 <= v <= 0xffffffff}
        if isinstance(t, str) and t in ok:
            good = ok[t]()
        elif isinstance(t, str) and types.get(t, {}).get('meta') == 'enum':
            good = v in types[t]['data']
        else:
            raise SchemaError('%s: a default needs a scalar or enum type' % where)
        if not good:
            raise SchemaError('%s: %r is no %s' % (where, v, t))

    for e in exprs:
        where = e['where']
        if e['meta'] == 'enum':
            if not isinstance(e.get('data'), list) or not all(isinstance(v, str) for v in e['data']):
                raise SchemaError('%s: enum data must be a list of strings' % where)
            members = e['data']
        elif e['meta'] == 'union':
            base = e.get('base')
            disc = e.get('discriminator')
            if not isinstance(base, dict) or disc not in base:
                raise SchemaError('%s: a union needs a base with its discriminator' % where)
            for k, t in base.items():
                check_type(t, where)
            dtype = types.get(base[disc])
            if not dtype or dtype['meta'] != 'enum':
                raise SchemaError('%s: the discriminator must be of an enum type' % where)
            for k, t in e['data'].items():
                if k not in dtype['data']:
                    raise SchemaError('%s: branch %s is no value of %s' % (where, k, base[disc]))
                if types.get(t, {}).get('meta') != 'struct':
                    raise SchemaError('%s: branch %s must be a struct' % (where, k))
            members = [k.lstrip('*') for k in base]
        elif e['meta'] == 'alternate':
            data = e.get('data')
            if not isinstance(data, dict) or len(data) < 2:
                raise SchemaError('%s: an alternate has at least two branches' % where)
            seen = {}
            for k, t in data.items():
                check_type(t, where)
                kind = json_kind(t, types)
                if kind is None:
                    raise SchemaError('%s: branch %s: an alternate\'s branch is a scalar, '
                                      'enum, struct or union' % (where, k))
                if kind in seen:
                    raise SchemaError('%s: branches %s and %s are both JSON %s'
                                      % (where, seen[kind], k, kind))
                seen[kind] = k
            members = list(data)
        elif e.get('boxed'):
            if types.get(e.get('data'), {}).get('meta') not in ('struct', 'union'):
                raise SchemaError('%s: a boxed command\'s data names a struct or union' % where)
            members = []
        else:
            data = e.get('data', {})
            if not isinstance(data, dict):
                raise SchemaError('%s: data must be an object' % where)
            for k, t in data.items():
                check_type(t, where)
            for k, v in e.get('defaults', {}).items():
                check_default(data['*' + k], v, '%s: default of %s' % (where, k))
            members = [k.lstrip('*') for k in data]
        if 'returns' in e:
            check_type(e['returns'], where)
        features = e.get('features', [])
        if not isinstance(features, list) or not all(isinstance(f, str) for f in features):
            raise SchemaError('%s: features must be a list of strings' % where)
        documented = set(e['doc']['members'])
        for f in features:
            if f in members:
                raise SchemaError('%s: feature %s has a member\'s name' % (where, f))
            if f not in documented:
                raise SchemaError('%s: feature %s of %s is not documented' % (where, f, e['name']))
        documented -= set(features)
        for m in members:
            if m not in documented:
                raise SchemaError('%s: member %s of %s is not documented' % (where, m, e['name']))
        for m in documented - set(members):
            raise SchemaError('%s: documented member %s does not exist in %s' % (where, m, e['name']))


def json_kind(t, types):
    """The JSON type of a value of schema type @t, as an alternate tells
    its branches apart; None for a type no alternate branch may have."""
    if isinstance(t, list):
        return None
    kinds = {'str': 'string', 'int': 'number', 'size': 'number', 'uint32': 'number',
             'number': 'number', 'bool': 'boolean', 'null': 'null'}
    if t in kinds:
        return kinds[t]
    meta = types.get(t, {}).get('meta')
    return {'enum': 'string', 'struct': 'object', 'union': 'object'}.get(meta)


def type_text(t):
    if isinstance(t, list):
        return '[%s]' % type_text(t[0])
    return t


def write_doc(exprs, sections, out):
    lines = ['<!-- Generated by scripts/qapi-gen.py from the qapi/ JSON files; do not edit. -->',
             '# QMP reference', '',
             'Commands, events and types of the QMP monitor, generated from the schema.',
             'Optional members are marked *optional*.', '']
    starts = dict(sections)
    for i, e in enumerate(exprs):
        if i in starts:
            lines += ['## %s' % starts[i], '']
        lines += ['### %s `%s`' % (e['meta'], e['name']), '']
        if e['doc']['body']:
            body = e['doc']['body'].splitlines()
            for i, l in enumerate(body):
                if l.startswith('    '):
                    if i and not body[i - 1].startswith('    '):
                        lines.append('')
                    lines.append('    ' + l.strip())
                else:
                    lines.append(l.strip())
            lines.append('')
        mem = e['doc']['members']
        if e['meta'] == 'enum':
            lines.append('Values:')
            lines.append('')
            for v in e['data']:
                lines.append('- `%s`: %s' % (v, mem.get(v, '')))
            lines.append('')
        elif e['meta'] == 'union':
            lines.append('Members:')
            lines.append('')
            for k, t in e['base'].items():
                name = k.lstrip('*')
                opt = ', *optional*' if k.startswith('*') else ''
                lines.append('- `%s` (`%s`%s): %s' % (name, type_text(t), opt, mem.get(name, '')))
            lines.append('')
            lines.append('The other members depend on `%s`:' % e['discriminator'])
            lines.append('')
            for k, t in e['data'].items():
                lines.append('- `%s`: the members of `%s`' % (k, t))
            lines.append('')
        elif e['meta'] == 'alternate':
            lines += ['One of (by the JSON type of the value):', '']
            for k, t in e['data'].items():
                lines.append('- `%s` (`%s`): %s' % (k, type_text(t), mem.get(k, '')))
            lines.append('')
        elif e.get('boxed'):
            lines += ['Arguments: the members of `%s`.' % e['data'], '']
        elif e.get('data'):
            lines.append('Members:' if e['meta'] == 'struct' else
                         'Arguments:' if e['meta'] == 'command' else 'Data:')
            lines.append('')
            for k, t in e['data'].items():
                name = k.lstrip('*')
                opt = ', *optional*' if k.startswith('*') else ''
                if name in e.get('defaults', {}):
                    opt += ', default `%s`' % json.dumps(e['defaults'][name])
                lines.append('- `%s` (`%s`%s): %s' % (name, type_text(t), opt, mem.get(name, '')))
            lines.append('')
        if e.get('features'):
            lines += ['Features:', '']
            for f in e['features']:
                lines.append('- `%s`: %s' % (f, mem.get(f, '')))
            lines.append('')
        if e['meta'] == 'command':
            if e.get('gen') is False:
                lines += ['Further arguments are accepted and passed on unchecked.', '']
            if 'returns' in e:
                lines += ['Returns: `%s`' % type_text(e['returns']), '']
    squeezed = []
    for l in lines:
        if not (l == '' and squeezed and squeezed[-1] == ''):
            squeezed.append(l)
    out.write('\n'.join(squeezed).rstrip('\n') + '\n')


# The introspection format knows these JSON types; the schema's integer
# kinds all introspect as 'int', as in QEMU.
INTROSPECT_BUILTIN = {
    'str': ('str', 'string'), 'int': ('int', 'int'), 'uint32': ('int', 'int'),
    'size': ('int', 'int'), 'bool': ('bool', 'boolean'), 'number': ('number', 'number'),
    'any': ('any', 'value'), 'null': ('null', 'null'),
}
EMPTY = 'q_empty'


def introspect(exprs):
    """The schema as query-qmp-schema returns it: commands and events first,
    then every type they reach (and only those), each entry once."""
    types = {e['name']: e for e in exprs if e['meta'] in TYPE_METAS}
    out = []
    done = set()

    def members(data):
        res = []
        for k, t in data.items():
            m = {'name': k.lstrip('*'), 'type': use(t)}
            if k.startswith('*'):
                m['default'] = None
            res.append(m)
        return res

    def emit_object(name, data):
        if name not in done:
            done.add(name)
            entry = {'name': name, 'meta-type': 'object', 'members': []}
            out.append(entry)
            entry['members'] = members(data)
        return name

    def use(t):
        if isinstance(t, list):
            elem = use(t[0])
            name = '[%s]' % elem
            if name not in done:
                done.add(name)
                out.append({'name': name, 'meta-type': 'array', 'element-type': elem})
            return name
        if t in INTROSPECT_BUILTIN:
            name, json_type = INTROSPECT_BUILTIN[t]
            if name not in done:
                done.add(name)
                out.append({'name': name, 'meta-type': 'builtin', 'json-type': json_type})
            return name
        if t in done:
            return t
        e = types[t]
        if e['meta'] == 'enum':
            done.add(t)
            out.append({'name': t, 'meta-type': 'enum', 'values': list(e['data']),
                        'members': [{'name': v} for v in e['data']]})
        elif e['meta'] == 'struct':
            emit_object(t, e.get('data', {}))
        elif e['meta'] == 'alternate':
            done.add(t)
            entry = {'name': t, 'meta-type': 'alternate', 'members': []}
            out.append(entry)
            entry['members'] = [{'type': use(bt)} for bt in e['data'].values()]
        else:
            done.add(t)
            entry = {'name': t, 'meta-type': 'object', 'members': [],
                     'tag': e['discriminator'], 'variants': []}
            out.append(entry)
            entry['members'] = members(e['base'])
            # Every value of the tag is a case; one without a branch adds nothing.
            for v in types[e['base'][e['discriminator']]]['data']:
                branch = e['data'].get(v)
                entry['variants'].append({'case': v, 'type': use(branch) if branch else empty()})
        return t

    def empty():
        return emit_object(EMPTY, {})

    for e in exprs:
        if e['meta'] not in ('command', 'event'):
            continue
        entry = {'name': e['name'], 'meta-type': e['meta']}
        out.append(entry)
        if e.get('boxed'):
            entry['arg-type'] = use(e['data'])
        elif e.get('data'):
            entry['arg-type'] = emit_object('q_obj_%s-arg' % e['name'], e['data'])
        else:
            entry['arg-type'] = empty()
        if e['meta'] == 'command':
            entry['ret-type'] = use(e['returns']) if 'returns' in e else empty()
        if e.get('features'):
            entry['features'] = list(e['features'])
    return out


def c_string(out, name, text):
    out.write('const char %s[] =\n' % name)
    for i in range(0, len(text), 72):
        chunk = text[i:i + 72].replace('\\', '\\\\').replace('"', '\\"')
        out.write('    "%s"\n' % chunk)
    out.write(';\n')


def write_c(exprs, out):
    slim = []
    for e in exprs:
        s = {'meta': e['meta'], 'name': e['name']}
        for k in ('data', 'returns', 'gen', 'boxed', 'base', 'discriminator'):
            if k in e:
                s[k] = e[k]
        slim.append(s)
    text = json.dumps(slim, separators=(',', ':'))
    out.write('/* SPDX-License-Identifier: GPL-2.0-or-later */\n')
    out.write('/* Generated by scripts/qapi-gen.py from the qapi/ JSON files; do not edit. */\n')
    c_string(out, 'qapi_schema_json', text)
    c_string(out, 'qapi_introspection_json',
             json.dumps(introspect(exprs), separators=(',', ':')))


# ---------------------------------------------------------------------------
# C code compiled from the schema

HEADER = ('/* SPDX-License-Identifier: GPL-2.0-or-later */\n'
          '/* Generated by scripts/qapi-gen.py from the qapi/ JSON files; do not edit. */\n')

# Enum names whose upper-case prefix the word splitting below gets wrong
# (an acronym run into a word); QEMU's constants carry these prefixes.
ENUM_PREFIX = {
    'QCryptoBlockFormat': 'QCRYPTO_BLOCK_FORMAT',
    'QCryptoBlockLUKSKeyslotState': 'QCRYPTO_BLOCK_LUKS_KEYSLOT_STATE',
    'BlkdebugEvent': 'BLKDBG',
}


def c_name(name):
    """A schema name as a C identifier: '-' and '.' become '_'."""
    return re.sub(r'[^A-Za-z0-9_]', '_', name)


def upper_words(camel):
    """BlockdevOnError -> BLOCKDEV_ON_ERROR, QMPCapability -> QMP_CAPABILITY."""
    if camel in ENUM_PREFIX:
        return ENUM_PREFIX[camel]
    out = []
    for i, ch in enumerate(camel):
        if i and ch.isupper():
            prev, nxt = camel[i - 1], camel[i + 1] if i + 1 < len(camel) else ''
            if prev.islower() or prev.isdigit() or (prev.isupper() and nxt.islower()):
                out.append('_')
        out.append(ch)
    return c_name(''.join(out)).upper()


def enum_const(enum, value):
    return '%s_%s' % (upper_words(enum), upper_words(value))


def qemu_bucket(key):
    """The bucket of @key in QEMU's 512-bucket dictionary (util/qdict.c's
    qdict_qemu_bucket): QEMU sends an event's members in bucket order."""
    value = (0x238F13AF * len(key)) & 0xffffffff
    for i, ch in enumerate(key.encode()):
        value = (value + (ch << (i * 5 % 24))) & 0xffffffff
    return ((1103515243 * value + 12345) & 0xffffffff) % 512


# How an event member of each type is passed and put into the data dict.
EVENT_C_TYPE = {
    'str': ('const char *', 'qdict_put_str(data, "%s", %s);'),
    'int': ('int64_t', 'qdict_put_int(data, "%s", %s);'),
    'size': ('uint64_t', 'qdict_put_obj(data, "%s", json_integer((json_int_t)%s));'),
    'uint32': ('uint32_t', 'qdict_put_int(data, "%s", %s);'),
    'bool': ('bool', 'qdict_put_bool(data, "%s", %s);'),
    'number': ('double', 'qdict_put_obj(data, "%s", json_real(%s));'),
}


def event_params(e, types):
    """(schema name, C name, C type, optional, put statement) per member, in
    schema order.  An optional string is absent when NULL; any other optional
    member comes with a has_ flag."""
    params = []
    for key, t in e.get('data', {}).items():
        name = key.lstrip('*')
        cn = c_name(name)
        if isinstance(t, str) and t in EVENT_C_TYPE:
            ctype, put = EVENT_C_TYPE[t]
            put = put % (name, cn)
        elif isinstance(t, str) and types.get(t, {}).get('meta') == 'enum':
            ctype = t
            put = 'qdict_put_str(data, "%s", %s_str(%s));' % (name, t, cn)
        else:
            raise SchemaError('%s: event member %s: type %r has no C emitter yet'
                              % (e['where'], name, t))
        params.append((name, cn, ctype, key.startswith('*'), put))
    return params


def event_prototype(e, params):
    args = []
    for name, cn, ctype, optional, put in params:
        if optional and ctype != 'const char *':
            args.append('bool has_%s' % cn)
        args.append('%s%s%s' % (ctype, '' if ctype.endswith('*') else ' ', cn))
    return 'void qapi_event_send_%s(%s)' % (c_name(e['name']).lower(),
                                            ', '.join(args) or 'void')



@contextlib.contextmanager
def generated(outdir, name, comment=''):
    """Opens a generated file with the common header; a .h also gets its
    comment and an include guard, closed when the caller is done."""
    with open(os.path.join(outdir, name), 'w', encoding='utf-8') as f:
        f.write(HEADER)
        guard = None
        if name.endswith('.h'):
            guard = 'QAPI_' + re.sub(r'[^A-Za-z0-9]', '_', name).upper()
            f.write(comment)
            f.write('#ifndef %s\n#define %s\n\n' % (guard, guard))
        yield f
        if guard:
            f.write('#endif\n')

# ---------------------------------------------------------------------------
# The schema's structs, unions, alternates and lists as C types
#
# Every struct, union and alternate a command argument reaches (and every
# list type on the way) gets, in qapi-types.h/.c:
#   - a C type: a struct has a member per schema member (an optional
#     scalar or enum, or an optional list, comes after a has_ flag; any
#     other optional member is a pointer that is NULL when absent); a flat
#     union has its base's members and then 'u', a C union of its branch
#     structs (by value) selected by the discriminator; an alternate has
#     'type' (which branch, an enum NameKind) and 'u', a union of the
#     branches' values; the list of T is TList, a linked list
#     { TList *next; value }; 'any' is a json_t * the value owns a
#     reference to;
#   - void qapi_free_T(T *): frees the value and all it holds (NULL is
#     fine), and g_autoptr(T) calls it;
#   - bool qapi_from_json_T(json_t *v, const char *name, T **out, Error **):
#     the C value of a JSON value the dispatcher already checked against
#     the schema, with the schema's defaults of members left out.  It
#     still checks the JSON types it reads, so a value that did not pass
#     the check fails with an error (@name is the member's path, as in
#     the checker's messages) instead of crashing.
# Scalars convert with qapi_from_json_str() & co (qapi/qapi-json.h), enums
# with the generated qapi_from_json_E().

# C types of the builtin scalars, the name their list type and converter
# use, and whether a value of the type is a pointer.
BUILTIN_C = {
    'str': ('char *', 'str'), 'int': ('int64_t', 'int'), 'size': ('uint64_t', 'size'),
    'uint32': ('uint32_t', 'uint32'), 'bool': ('bool', 'bool'),
    'number': ('double', 'number'), 'any': ('json_t *', 'any'),
}

# Schema types whose name a hand-written C type of the tree already has:
# the generated type takes this name instead.
C_TYPE_NAME = {
    'QCryptoBlockCreateOptions': 'QapiCryptoBlockCreateOptions',
    'ThrottleLimits': 'QapiThrottleLimits',
}

# Member names C cannot use as they are (keywords, GCC's predefined
# macros, errno): the C member gets a q_ prefix.
C_RESERVED = {'unix', 'linux', 'errno', 'default', 'int', 'char', 'long', 'short', 'double',
              'float', 'signed', 'unsigned', 'struct', 'union', 'enum', 'if', 'else',
              'for', 'while', 'do', 'switch', 'case', 'break', 'continue', 'return',
              'goto', 'static', 'extern', 'const', 'volatile', 'register', 'auto',
              'sizeof', 'typedef', 'void', 'bool', 'true', 'false', 'inline', 'restrict'}


def c_member(name):
    cn = c_name(name)
    return 'q_' + cn if cn in C_RESERVED else cn


def c_type_name(t):
    """The C name of a schema type (a list: its element's name + 'List')."""
    if isinstance(t, list):
        return c_type_name(t[0]) + 'List'
    if t in BUILTIN_C:
        return BUILTIN_C[t][1]
    return C_TYPE_NAME.get(t, t)


def is_pointer(t, types):
    """Whether a value of @t is held by pointer (and NULL when absent)."""
    if isinstance(t, list) or t in ('str', 'any'):
        return True
    return types.get(t, {}).get('meta') in ('struct', 'union', 'alternate')


def c_value_type(t, types):
    """The C type of a member or list element of type @t."""
    if isinstance(t, list):
        return c_type_name(t) + ' *'
    if t in BUILTIN_C:
        return BUILTIN_C[t][0]
    if types[t]['meta'] == 'enum':
        return t
    return c_type_name(t) + ' *'


def c_decl(ctype, name):
    return '%s%s%s' % (ctype, '' if ctype.endswith('*') else ' ', name)


def has_flag(t, optional, types):
    """An optional member has a has_ flag unless a NULL pointer says it is
    absent; a list has one still (its NULL is also the empty list)."""
    return optional and (isinstance(t, list) or not is_pointer(t, types))


def free_call(t, expr, types):
    """The statement that frees a member of type @t, or None."""
    if isinstance(t, list) or types.get(t, {}).get('meta') in ('struct', 'union', 'alternate'):
        return 'qapi_free_%s(%s);' % (c_type_name(t), expr)
    if t == 'str':
        return 'g_free(%s);' % expr
    if t == 'any':
        return 'json_decref(%s);' % expr
    return None


def struct_members(e):
    """(schema name, C name, type, optional, default) of a struct's data or a
    union's base."""
    data = e['base'] if e['meta'] == 'union' else e.get('data', {})
    return [(k.lstrip('*'), c_member(k.lstrip('*')), t, k.startswith('*'),
             e['defaults'].get(k.lstrip('*'))) for k, t in data.items()]


def gen_types_closure(exprs, types):
    """The structs, unions, alternates and lists command arguments reach,
    in schema order (lists in the order first met)."""
    named, lists = set(), []

    for e in exprs:
        if e['meta'] != 'command' or e.get('gen') is False:
            continue
        data = e.get('data', {})
        for t in [data] if isinstance(data, str) else data.values():
            walk_type(t, types, named, lists)
    return [e for e in exprs if e['name'] in named], lists


def walk_type(t, types, named, lists):
    """Adds to @named the struct, union and alternate names @t reaches,
    and to @lists (in the order first met) the list types."""
    if isinstance(t, list):
        walk_type(t[0], types, named, lists)
        if t not in lists:
            lists.append(t)
        return
    e = types.get(t)
    if not e or e['meta'] == 'enum' or t in named:
        return
    named.add(t)
    if e['meta'] == 'union':
        for bt in list(e['base'].values()) + list(e['data'].values()):
            walk_type(bt, types, named, lists)
    else:
        for bt in e.get('data', {}).values():
            walk_type(bt, types, named, lists)


def gen_member_from_json(name, dst, t, types, indent):
    """Lines converting the JSON value m into @dst (of type @t); @name is
    the C expression of the member's path."""
    fn = 'qapi_from_json_%s' % c_type_name(t)
    pad = ' ' * indent
    return [pad + 'if (!%s(m, %s, &%s, errp)) {' % (fn, name, dst),
            pad + '    return false;',
            pad + '}']


def gen_members_from_json(cname, members, types, obj):
    """Lines filling @obj's members from the JSON object v."""
    lines = []
    for name, cn, t, optional, default in members:
        lines.append('    m = json_object_get(v, "%s");' % name)
        lines.append('    if (m) {')
        lines.append('        g_autofree char *n = qapi_json_path(name, "%s");' % name)
        lines.append('')
        if has_flag(t, optional, types):
            lines.append('        %s->has_%s = true;' % (obj, cn))
        lines += gen_member_from_json('n', '%s->%s' % (obj, cn), t, types, 8)
        if not optional:
            lines.append('    } else {')
            lines.append('        return qapi_json_missing(name, "%s", errp);' % name)
        elif default is not None:
            lines.append('    } else {')
            lines.append('        %s->%s = %s;' % (obj, cn, c_literal(t, default, types)))
        lines.append('    }')
    return lines


def gen_free_members(members, types, obj):
    lines = []
    for name, cn, t, optional, default in members:
        call = free_call(t, '%s->%s' % (obj, cn), types)
        if call:
            lines.append('    %s' % call)
    return lines


def write_struct_types(exprs, types, h, c):
    named, lists = types_closure_with_returns(exprs, types)
    if not named and not lists:
        return
    h.write('/* The structs, unions, alternates and lists of command arguments. */\n')
    for e in named:
        h.write('typedef struct %s %s;\n' % (c_type_name(e['name']), c_type_name(e['name'])))
    for t in lists:
        h.write('typedef struct %s %s;\n' % (c_type_name(t), c_type_name(t)))
    h.write('\n')
    # A union holds its branches by value: they are defined first.
    done = set()

    def define(e):
        n = e['name']
        if n in done:
            return
        done.add(n)
        cn = c_type_name(n)
        if e['meta'] == 'union':
            for bt in e['data'].values():
                define(types[bt])
        if e['meta'] == 'alternate':
            h.write('typedef enum %sKind {\n' % cn)
            for k in e['data']:
                h.write('    %s_KIND_%s,\n' % (upper_words(cn), upper_words(k)))
            h.write('} %sKind;\n\n' % cn)
            h.write('struct %s {\n    %sKind type;\n    union {\n' % (cn, cn))
            for k, t in e['data'].items():
                if t != 'null':
                    h.write('        %s;\n' % c_decl(c_value_type(t, types), c_member(k)))
            h.write('    } u;\n};\n\n')
            return
        h.write('struct %s {\n' % cn)
        for name, mn, t, optional, default in struct_members(e):
            if has_flag(t, optional, types):
                h.write('    bool has_%s;\n' % mn)
            h.write('    %s;\n' % c_decl(c_value_type(t, types), mn))
        if e['meta'] == 'union' and e['data']:
            h.write('    union {\n')
            for k, bt in e['data'].items():
                h.write('        %s %s;\n' % (c_type_name(bt), c_member(k)))
            h.write('    } u;\n')
        h.write('};\n\n')

    for e in named:
        define(e)
    for t in lists:
        cn = c_type_name(t)
        h.write('struct %s {\n    %s *next;\n    %s;\n};\n\n'
                % (cn, cn, c_decl(c_value_type(t[0], types), 'value')))
    for cn in [c_type_name(e['name']) for e in named] + [c_type_name(t) for t in lists]:
        h.write('void qapi_free_%s(%s *obj);\n' % (cn, cn))
        h.write('G_DEFINE_AUTOPTR_CLEANUP_FUNC(%s, qapi_free_%s)\n' % (cn, cn))
        h.write('bool qapi_from_json_%s(json_t *v, const char *name, %s **out, Error **errp);\n'
                % (cn, cn))
    h.write('\n')
    write_clone_decls(named, lists, h)
    write_to_json_decls(named, lists, h)

    # Structs (as union branches too) fill and free their members in place.
    # A union may come before its branch structs in the schema: every
    # helper is declared first.
    c.write('/* Members of structs and union bases, read and freed in place. */\n')
    for e in named:
        if e['meta'] != 'alternate':
            cn = c_type_name(e['name'])
            c.write('static bool %s_members_from_json(json_t *v, const char *name, %s *obj,\n'
                    '                                 Error **errp);\n' % (cn, cn))
            c.write('static void %s_free_members(%s *obj);\n' % (cn, cn))
            c.write('static void %s_clone_members(const %s *src, %s *dst);\n' % (cn, cn, cn))
    c.write('\n')
    for e in named:
        cn = c_type_name(e['name'])
        if e['meta'] == 'alternate':
            continue
        members = struct_members(e)
        c.write('static bool %s_members_from_json(json_t *v, const char *name, %s *obj,\n'
                '                                 Error **errp)\n{\n' % (cn, cn))
        if members:
            c.write('    json_t *m;\n\n')
        c.write('    if (!json_is_object(v)) {\n'
                '        return qapi_json_bad_type(name, "object", errp);\n    }\n')
        for l in gen_members_from_json(cn, members, types, 'obj'):
            c.write(l + '\n')
        if e['meta'] == 'union' and e['data']:
            disc = c_member(e['discriminator'])
            denum = e['base'][e['discriminator']]
            c.write('    switch (obj->%s) {\n' % disc)
            for k, bt in e['data'].items():
                c.write('    case %s:\n' % enum_const(denum, k))
                c.write('        return %s_members_from_json(v, name, &obj->u.%s, errp);\n'
                        % (c_type_name(bt), c_member(k)))
            c.write('    default:\n        break;\n    }\n')
        c.write('    return true;\n}\n\n')
        c.write('static void %s_free_members(%s *obj)\n{\n' % (cn, cn))
        for l in gen_free_members(members, types, 'obj'):
            c.write(l + '\n')
        if e['meta'] == 'union' and e['data']:
            disc = c_member(e['discriminator'])
            denum = e['base'][e['discriminator']]
            c.write('    switch (obj->%s) {\n' % disc)
            for k, bt in e['data'].items():
                c.write('    case %s:\n        %s_free_members(&obj->u.%s);\n        break;\n'
                        % (enum_const(denum, k), c_type_name(bt), c_member(k)))
            c.write('    default:\n        break;\n    }\n')
        c.write('}\n\n')

    for e in named:
        cn = c_type_name(e['name'])
        if e['meta'] == 'alternate':
            write_alternate_functions(e, cn, types, c)
            continue
        c.write('bool qapi_from_json_%s(json_t *v, const char *name, %s **out, Error **errp)\n'
                '{\n    %s *obj = g_new0(%s, 1);\n\n'
                '    if (!%s_members_from_json(v, name, obj, errp)) {\n'
                '        qapi_free_%s(obj);\n        *out = NULL;\n        return false;\n'
                '    }\n    *out = obj;\n    return true;\n}\n\n' % (cn, cn, cn, cn, cn, cn))
        c.write('void qapi_free_%s(%s *obj)\n{\n    if (obj) {\n'
                '        %s_free_members(obj);\n        g_free(obj);\n    }\n}\n\n'
                % (cn, cn, cn))

    for t in lists:
        cn = c_type_name(t)
        elem = t[0]
        c.write('bool qapi_from_json_%s(json_t *v, const char *name, %s **out, Error **errp)\n'
                '{\n    %s *head = NULL, **tail = &head;\n    size_t i;\n    json_t *m;\n\n'
                '    *out = NULL;\n'
                '    if (!json_is_array(v)) {\n'
                '        return qapi_json_bad_type(name, "array", errp);\n    }\n'
                '    json_array_foreach(v, i, m) {\n'
                '        g_autofree char *n = g_strdup_printf("%%s[%%zu]", name, i);\n'
                '        %s *node = g_new0(%s, 1);\n\n'
                '        *tail = node;\n        tail = &node->next;\n'
                '        if (!qapi_from_json_%s(m, n, &node->value, errp)) {\n'
                '            qapi_free_%s(head);\n            return false;\n        }\n'
                '    }\n    *out = head;\n    return true;\n}\n\n'
                % (cn, cn, cn, cn, cn, c_type_name(elem), cn))
        c.write('void qapi_free_%s(%s *obj)\n{\n    while (obj) {\n'
                '        %s *next = obj->next;\n\n' % (cn, cn, cn))
        call = free_call(elem, 'obj->value', types)
        if call:
            c.write('        %s\n' % call)
        c.write('        g_free(obj);\n        obj = next;\n    }\n}\n\n')
    write_clone_functions(named, lists, types, c)
    write_to_json_functions(named, lists, types, c)


# ---------------------------------------------------------------------------
# Deep copies: T *qapi_clone_T(const T *src) for every generated type.  A
# clone owns all it holds (strings, nested values, lists and 'any' values
# are copied, not shared), so it outlives the value it was made from: a
# job keeps a clone of its command's arguments, which the marshaller frees
# when the handler returns.  NULL clones to NULL (the empty list too).

def clone_call(t, expr, types):
    """The C expression that copies a member of type @t held in @expr, or
    None for a value the struct copy already copied (scalars, enums)."""
    if isinstance(t, list) or types.get(t, {}).get('meta') in ('struct', 'union', 'alternate'):
        return 'qapi_clone_%s(%s)' % (c_type_name(t), expr)
    if t == 'str':
        return 'g_strdup(%s)' % expr
    if t == 'any':
        return '(%s ? json_deep_copy(%s) : NULL)' % (expr, expr)
    return None


def write_clone_decls(named, lists, h):
    for cn in [c_type_name(e['name']) for e in named] + [c_type_name(t) for t in lists]:
        h.write('%s *qapi_clone_%s(const %s *src);\n' % (cn, cn, cn))
    h.write('\n')


def write_clone_functions(named, lists, types, c):
    c.write('/* Deep copies: the members of structs and union bases, copied in place. */\n')
    for e in named:
        cn = c_type_name(e['name'])
        if e['meta'] == 'alternate':
            continue
        c.write('static void %s_clone_members(const %s *src, %s *dst)\n{\n' % (cn, cn, cn))
        c.write('    *dst = *src;\n')
        for name, mn, t, optional, default in struct_members(e):
            call = clone_call(t, 'src->%s' % mn, types)
            if call:
                c.write('    dst->%s = %s;\n' % (mn, call))
        if e['meta'] == 'union' and e['data']:
            disc = c_member(e['discriminator'])
            denum = e['base'][e['discriminator']]
            c.write('    switch (src->%s) {\n' % disc)
            for k, bt in e['data'].items():
                c.write('    case %s:\n        %s_clone_members(&src->u.%s, &dst->u.%s);\n'
                        '        break;\n'
                        % (enum_const(denum, k), c_type_name(bt), c_member(k), c_member(k)))
            c.write('    default:\n        break;\n    }\n')
        c.write('}\n\n')
    for e in named:
        cn = c_type_name(e['name'])
        c.write('%s *qapi_clone_%s(const %s *src)\n{\n    %s *dst;\n\n'
                '    if (!src) {\n        return NULL;\n    }\n'
                '    dst = g_new(%s, 1);\n' % (cn, cn, cn, cn, cn))
        if e['meta'] == 'alternate':
            c.write('    *dst = *src;\n    switch (src->type) {\n')
            for k, t in e['data'].items():
                call = clone_call(t, 'src->u.%s' % c_member(k), types)
                if call:
                    c.write('    case %s_KIND_%s:\n        dst->u.%s = %s;\n        break;\n'
                            % (upper_words(cn), upper_words(k), c_member(k), call))
            c.write('    default:\n        break;\n    }\n')
        else:
            c.write('    %s_clone_members(src, dst);\n' % cn)
        c.write('    return dst;\n}\n\n')
    for t in lists:
        cn = c_type_name(t)
        call = clone_call(t[0], 'src->value', types) or 'src->value'
        c.write('%s *qapi_clone_%s(const %s *src)\n{\n'
                '    %s *head = NULL, **tail = &head;\n\n'
                '    for (; src; src = src->next) {\n'
                '        %s *node = g_new0(%s, 1);\n\n'
                '        node->value = %s;\n'
                '        *tail = node;\n        tail = &node->next;\n    }\n'
                '    return head;\n}\n\n' % (cn, cn, cn, cn, cn, cn, call))


# ---------------------------------------------------------------------------
# Output marshalling: json_t *qapi_to_json_T(const T *v) for every generated
# type, the JSON a command answers with.  The monitor sends an object's
# members in insertion order, so they are put in the order QEMU 7.2 sends
# them (its dictionary's, not the schema's); an absent optional member
# (has_ flag false, or a NULL pointer) is left out.  A list is an array, an
# alternate the value of its branch.

def to_json_expr(t, expr, types):
    """The C expression of the new JSON value of @expr, of type @t."""
    if isinstance(t, list) or types.get(t, {}).get('meta') in ('struct', 'union', 'alternate'):
        return 'qapi_to_json_%s(%s)' % (c_type_name(t), expr)
    if types.get(t, {}).get('meta') == 'enum':
        return 'json_string(%s_str(%s))' % (t, expr)
    return {'str': 'json_string(%s)', 'int': 'json_integer(%s)',
            'size': 'json_integer((json_int_t)%s)', 'uint32': 'json_integer(%s)',
            'bool': 'json_boolean(%s)', 'number': 'json_real(%s)',
            'any': 'json_incref(%s)', 'null': 'json_null()%.0s'}[t] % expr


def write_to_json_decls(named, lists, h):
    for cn in [c_type_name(e['name']) for e in named] + [c_type_name(t) for t in lists]:
        h.write('json_t *qapi_to_json_%s(const %s *v);\n' % (cn, cn))
    h.write('\n')


def qemu_member_order(members):
    """@members ((schema name, ...) in schema order, as QEMU's output visitor
    adds them to its dictionary) in the order QEMU 7.2 sends them: by
    bucket of its dictionary, the later member first within one."""
    return [m for i, m in sorted(enumerate(members),
                                 key=lambda im: (qemu_bucket(im[1][0]), -im[0]))]


def gen_members_to_json(members, types, pad):
    """Lines putting @members ((schema name, C expression, type, optional))
    into the JSON object obj, in QEMU's order."""
    lines = []
    for name, expr, t, optional in qemu_member_order(members):
        put = 'json_object_set_new(obj, "%s", %s);' % (name, to_json_expr(t, expr, types))
        if has_flag(t, optional, types):
            cut = max(expr.rfind('.'), expr.rfind('>')) + 1
            cond = expr[:cut] + 'has_' + expr[cut:]
            lines += [pad + 'if (%s) {' % cond, pad + '    ' + put, pad + '}']
        elif optional:
            lines += [pad + 'if (%s) {' % expr, pad + '    ' + put, pad + '}']
        else:
            lines.append(pad + put)
    return lines


def write_to_json_functions(named, lists, types, c):
    """A struct's or union's members are put in QEMU's order (see
    qemu_member_order()); a union's base and branch members share one
    dictionary, so each branch has its own sequence."""
    for e in named:
        cn = c_type_name(e['name'])
        c.write('json_t *qapi_to_json_%s(const %s *v)\n{\n' % (cn, cn))
        if e['meta'] == 'alternate':
            c.write('    switch (v->type) {\n')
            for k, t in e['data'].items():
                c.write('    case %s_KIND_%s:\n        return %s;\n'
                        % (upper_words(cn), upper_words(k),
                           to_json_expr(t, 'v->u.%s' % c_member(k), types)))
            c.write('    default:\n        g_assert_not_reached();\n    }\n}\n\n')
            continue
        c.write('    json_t *obj = json_object();\n\n')
        base = [(name, 'v->%s' % mn, t, optional)
                for name, mn, t, optional, default in struct_members(e)]
        if e['meta'] == 'union' and e['data']:
            disc = c_member(e['discriminator'])
            denum = e['base'][e['discriminator']]
            c.write('    switch (v->%s) {\n' % disc)
            for k, bt in e['data'].items():
                branch = [(name, 'v->u.%s.%s' % (c_member(k), mn), t, optional)
                          for name, mn, t, optional, default in struct_members(types[bt])]
                c.write('    case %s:\n' % enum_const(denum, k))
                for l in gen_members_to_json(base + branch, types, '        '):
                    c.write(l + '\n')
                c.write('        break;\n')
            c.write('    default:\n')
            for l in gen_members_to_json(base, types, '        '):
                c.write(l + '\n')
            c.write('        break;\n    }\n')
        else:
            for l in gen_members_to_json(base, types, '    '):
                c.write(l + '\n')
        c.write('    return obj;\n}\n\n')
    for t in lists:
        cn = c_type_name(t)
        c.write('json_t *qapi_to_json_%s(const %s *v)\n{\n'
                '    json_t *arr = json_array();\n\n'
                '    for (; v; v = v->next) {\n'
                '        json_array_append_new(arr, %s);\n    }\n'
                '    return arr;\n}\n\n' % (cn, cn, to_json_expr(t[0], 'v->value', types)))


def types_closure_with_returns(exprs, types):
    """gen_types_closure()'s types plus those the typed return values of
    commands (the commands outside RAW_RETURN_COMMANDS) reach."""
    named, lists = gen_types_closure(exprs, types)
    names = {e['name'] for e in named}

    for e in exprs:
        if e['meta'] == 'command' and 'returns' in e and e['name'] not in RAW_RETURN_COMMANDS:
            walk_type(e['returns'], types, names, lists)
    return [e for e in exprs if e['name'] in names], lists


# How an alternate tells its branches apart: the jansson test of each
# JSON type (an integer is also a 'number').
JSON_KIND_TEST = {'string': 'json_is_string(v)', 'boolean': 'json_is_boolean(v)',
                  'null': 'json_is_null(v)', 'object': 'json_is_object(v)'}


def write_alternate_functions(e, cn, types, c):
    c.write('bool qapi_from_json_%s(json_t *v, const char *name, %s **out, Error **errp)\n'
            '{\n    g_autoptr(%s) obj = g_new0(%s, 1);\n    json_t *m = v;\n\n'
            '    *out = NULL;\n' % (cn, cn, cn, cn))
    first = True
    for k, t in e['data'].items():
        kind = json_kind(t, types)
        if kind == 'number':
            test = 'json_is_number(v)' if t == 'number' else 'json_is_integer(v)'
        else:
            test = JSON_KIND_TEST[kind]
        c.write('    %sif (%s) {\n' % ('' if first else '} else ', test))
        first = False
        c.write('        obj->type = %s_KIND_%s;\n' % (upper_words(cn), upper_words(k)))
        if t != 'null':
            for l in gen_member_from_json('name', 'obj->u.%s' % c_member(k), t, types, 8):
                c.write(l + '\n')
    c.write('    } else {\n'
            '        return qapi_json_bad_type(qapi_json_leaf(name), "%s", errp);\n    }\n'
            '    *out = g_steal_pointer(&obj);\n    return true;\n}\n\n' % e['name'])
    c.write('void qapi_free_%s(%s *obj)\n{\n    if (!obj) {\n        return;\n    }\n'
            '    switch (obj->type) {\n' % (cn, cn))
    for k, t in e['data'].items():
        call = free_call(t, 'obj->u.%s' % c_member(k), types)
        if call:
            c.write('    case %s_KIND_%s:\n        %s\n        break;\n'
                    % (upper_words(cn), upper_words(k), call))
    c.write('    default:\n        break;\n    }\n    g_free(obj);\n}\n\n')


def write_types(exprs, outdir):
    types = {e['name']: e for e in exprs if e['meta'] in TYPE_METAS}
    enums = [e for e in exprs if e['meta'] == 'enum']
    with generated(outdir, 'qapi-types.h',
                   '/*\n * The schema\'s enums (a C enum, its name table and a parser each)\n'
                   ' * and the C types of command arguments (see qapi-gen.py).\n */\n') as h, \
            generated(outdir, 'qapi-types.c') as c:
        h.write('#include "qapi/enum.h"\n#include "qapi/qapi-json.h"\n\n')
        for e in enums:
            n = e['name']
            h.write('typedef enum %s {\n' % n)
            for v in e['data']:
                h.write('    %s,\n' % enum_const(n, v))
            h.write('    %s__MAX,\n} %s;\n' % (upper_words(n), n))
            h.write('extern const QapiEnumLookup %s_lookup;\n' % n)
            h.write('static inline const char *%s_str(%s value)\n{\n'
                    '    return qapi_enum_name(&%s_lookup, value);\n}\n' % (n, n, n))
            h.write('/* @s as a %s; else false with "Parameter \'@member\' does not '
                    'accept value \'@s\'". */\n' % n)
            h.write('static inline bool %s_parse(const char *member, const char *s, %s *out,\n'
                    '                                 Error **errp)\n{\n'
                    '    int v = qapi_enum_parse(&%s_lookup, member, s, errp);\n\n'
                    '    if (v < 0) {\n        return false;\n    }\n'
                    '    *out = (%s)v;\n    return true;\n}\n' % (n, n, n, n))
            h.write('static inline bool qapi_from_json_%s(json_t *v, const char *name, %s *out,\n'
                    '                                     Error **errp)\n{\n'
                    '    if (!json_is_string(v)) {\n'
                    '        return qapi_json_bad_type(name, "string", errp);\n    }\n'
                    '    return %s_parse(qapi_json_leaf(name), json_string_value(v), out, errp);\n'
                    '}\n\n' % (n, n, n))
        c.write('#include "qapi/qapi-types.h"\n\n')
        for e in enums:
            n = e['name']
            c.write('static const char *const %s_names[] = {\n' % n)
            for v in e['data']:
                c.write('    [%s] = "%s",\n' % (enum_const(n, v), v))
            c.write('};\n')
            c.write('const QapiEnumLookup %s_lookup = { %s_names, %s__MAX };\n\n'
                    % (n, n, upper_words(n)))
        write_struct_types(exprs, types, h, c)


def write_events(exprs, outdir):
    types = {e['name']: e for e in exprs if e['meta'] in TYPE_METAS}
    events = [(e, event_params(e, types)) for e in exprs if e['meta'] == 'event']
    with generated(outdir, 'qapi-events.h',
                   '/*\n * One emitter per event of the schema.  Each builds the event\'s data\n'
                   ' * and hands it to the sink the monitor registered (qapi/event.h);\n'
                   ' * without one (qemu-img, qemu-io) the event goes nowhere.\n */\n') as h:
        h.write('#include <stdbool.h>\n#include <stdint.h>\n#include "qapi/qapi-types.h"\n\n')
        for e, params in events:
            h.write('%s;\n' % event_prototype(e, params))
        h.write('\n')
    with generated(outdir, 'qapi-events.c') as c:
        c.write('#include "qapi/event.h"\n#include "qapi/qapi-events.h"\n'
                '#include "qobject/qdict.h"\n\n')
        for e, params in events:
            c.write('%s\n{\n' % event_prototype(e, params))
            if not params:
                c.write('    qapi_event_deliver("%s", NULL);\n}\n\n' % e['name'])
                continue
            c.write('    QDict *data = qdict_new();\n\n')
            # QEMU's order: by bucket, the later member first within one.
            order = sorted(range(len(params)), key=lambda i: (qemu_bucket(params[i][0]), -i))
            for i in order:
                name, cn, ctype, optional, put = params[i]
                if optional:
                    cond = cn if ctype == 'const char *' else 'has_%s' % cn
                    c.write('    if (%s) {\n        %s\n    }\n' % (cond, put))
                else:
                    c.write('    %s\n' % put)
            c.write('    qapi_event_deliver("%s", data);\n}\n\n' % e['name'])


# Commands whose handler still takes the arguments as a dictionary:
# QObject *qmp_NAME(QDict *args, Error **errp).  Every other command's
# handler takes them typed (see command_params()).  A command leaves this
# list when its handler is converted; this list is what is left to do.
DICT_COMMANDS = {
    # 'gen': false, as in QEMU 7.2: a device's properties are the device
    # type's, not the schema's; the handler checks them against the type
    'device_add',
}

# Commands with a 'returns' whose handler still builds its answer by hand
# and returns it as a QObject * (checked against the schema only at run
# time, with QMP_CHECK_RETURNS=1).  Every other such command's handler
# returns the C type of its 'returns' (a struct, union or alternate
# pointer, a list, a builtin), which the generated marshaller turns into
# JSON with qapi_to_json_T() and frees: an answer the schema does not
# declare fails to compile.  A command leaves this list when its handler
# is converted; this list is what is left to do.
RAW_RETURN_COMMANDS = {
    # the answer is the introspection JSON this generator writes
    # (qapi_introspection_json); SchemaInfo, a union per meta-type, would
    # only be parsed back into C to be printed again
    'query-qmp-schema',
    # QOM property lists (ObjectPropertyInfo, its default-value an 'any'),
    # built as JSON by hw/qdev.c and this file's helpers: not converted yet
    'qom-list', 'qom-list-properties', 'device-list-properties',
}


def typed_return(e):
    """The schema type a command's handler returns typed, or None."""
    if 'returns' not in e or e['name'] in RAW_RETURN_COMMANDS or e['name'] in DICT_COMMANDS:
        return None
    return e['returns']


def handler_return_type(e, params, types):
    t = typed_return(e)
    if params is None or t is None:
        return 'QObject *'
    return c_value_type(t, types)


def write_typed_call(e, call, types, c):
    """Calls the handler of @e, which returns its typed answer, and puts
    that answer as JSON into ret (declared, NULL) unless it failed."""
    t = typed_return(e)
    cn = c_name(e['name'])
    c.write('    {\n        Error *err = NULL;\n        %s = qmp_%s(%s);\n\n'
            % (c_decl(c_value_type(t, types), 'r'), cn,
               ', '.join(call[:-1] + ['&err'])))
    c.write('        if (err) {\n            error_propagate(errp, err);\n'
            '        } else {\n            ret = %s;\n        }\n'
            % to_json_expr(t, 'r', types))
    free = free_call(t, 'r', types)
    if free:
        c.write('        %s\n' % free)
    c.write('    }\n')


# How a typed argument of each type is declared, and read from the
# (already checked) JSON value v.
ARG_C_TYPE = {
    'str': ('const char *', 'json_string_value(v)'),
    'int': ('int64_t', 'json_integer_value(v)'),
    'size': ('uint64_t', '(uint64_t)json_integer_value(v)'),
    'uint32': ('uint32_t', '(uint32_t)json_integer_value(v)'),
    'bool': ('bool', 'json_is_true(v)'),
    'number': ('double', 'json_number_value(v)'),
}


def camel(name):
    return ''.join(w[:1].upper() + w[1:] for w in re.split(r'[-_.]', name))


def c_literal(t, v, types):
    if types.get(t, {}).get('meta') == 'enum':
        return enum_const(t, v)
    if isinstance(v, bool):
        return 'true' if v else 'false'
    if isinstance(v, str):
        return json.dumps(v)
    return repr(v)


def command_params(e, types):
    """(schema name, C name, C type, optional, C expression of v, default,
    type, has_ flag) per argument of a typed command, in schema order.  The
    expression is None for an argument the marshaller converts with
    qapi_from_json_T() (an enum, struct, union, alternate or list)."""
    if e.get('gen') is False:
        raise SchemaError('%s: %s: a gen:false command keeps its dictionary'
                          % (e['where'], e['name']))
    if e.get('boxed'):
        # One argument, the whole arguments as the struct or union 'data'
        # names (schema name None: the marshaller converts @args itself).
        return [(None, 'arg', c_value_type(e['data'], types), False, None, None,
                 e['data'], False)]
    params = []
    for key, t in e.get('data', {}).items():
        name = key.lstrip('*')
        optional = key.startswith('*')
        if isinstance(t, str) and t in ARG_C_TYPE:
            ctype, expr = ARG_C_TYPE[t]
        elif t == 'any':
            # Borrowed from the arguments, which outlive the call.
            ctype, expr = 'json_t *', 'v'
        elif isinstance(t, list) or t in types:
            ctype, expr = c_value_type(t, types), None
        else:
            raise SchemaError('%s: %s: argument %s of type %r has no C form yet; '
                              'the command stays in DICT_COMMANDS'
                              % (e['where'], e['name'], name, t))
        default = e['defaults'].get(name)
        params.append((name, c_name(name), ctype, optional, expr,
                       None if default is None else c_literal(t, default, types), t,
                       has_flag(t, optional, types)))
    return params


def handler_prototype(e, params, types):
    fn = 'qmp_%s' % c_name(e['name'])
    if params is None:
        return 'QObject *%s(QDict *args, Error **errp)' % fn
    args = []
    for name, cn, ctype, optional, expr, default, t, has in params:
        if has:
            args.append('bool has_%s' % cn)
        args.append(c_decl(ctype, cn))
    args.append('Error **errp')
    return '%s(%s)' % (c_decl(handler_return_type(e, params, types), fn), ', '.join(args))


def write_marshaller(e, params, types, c):
    """The function that converts a command's checked arguments and calls
    its typed handler; what the conversion allocated is freed after it."""
    cn = c_name(e['name'])
    sname = 'Qmp%sArgs' % camel(e['name'])
    if not params:
        c.write('static QObject *qmp_marshal_%s(QDict *args, Error **errp)\n{\n' % cn)
        if typed_return(e):
            c.write('    QObject *ret = NULL;\n\n')
            write_typed_call(e, ['errp'], types, c)
            c.write('    return ret;\n}\n\n')
        else:
            c.write('    return qmp_%s(errp);\n}\n\n' % cn)
        return
    c.write('/* %s\'s arguments, defaults applied. */\n' % e['name'])
    c.write('typedef struct %s {\n' % sname)
    for name, pn, ctype, optional, expr, default, t, has in params:
        if has:
            c.write('    bool has_%s;\n' % pn)
        c.write('    %s;\n' % c_decl(ctype, pn))
    c.write('} %s;\n\n' % sname)
    frees = [free_call(t, 'a.%s' % pn, types)
             for name, pn, ctype, optional, expr, default, t, has in params
             if expr is None and free_call(t, 'a.%s' % pn, types)]
    fail = 'goto out;' if frees else 'return NULL;'
    tret = typed_return(e)
    c.write('/* The dispatcher checked @args against the schema. */\n')
    c.write('static QObject *qmp_marshal_%s(QDict *args, Error **errp)\n{\n' % cn)
    inits = ['.%s = %s' % (pn, default)
             for name, pn, ctype, optional, expr, default, t, has in params
             if default is not None]
    c.write('    %s a = { %s };\n' % (sname, ', '.join(inits) or '.%s = 0' % params[0][1]))
    if frees or tret:
        c.write('    QObject *ret = NULL;\n')
    c.write('    json_t *v;\n\n')
    for name, pn, ctype, optional, expr, default, t, has in params:
        if name is None:
            c.write('    v = args;\n')
        else:
            c.write('    v = json_object_get(args, "%s");\n' % name)
        body = []
        if expr is None:
            body.append('if (!qapi_from_json_%s(v, %s, &a.%s, errp)) {'
                        % (c_type_name(t), 'NULL' if name is None else '"%s"' % name, pn))
            body.append('    %s' % fail)
            body.append('}')
        else:
            body.append('a.%s = %s;' % (pn, expr))
        if has:
            body.insert(0, 'a.has_%s = true;' % pn)
        if optional:
            c.write('    if (v) {\n')
            for l in body:
                c.write('        %s\n' % l)
            c.write('    }\n')
        else:
            for l in body:
                c.write('    %s\n' % l)
    call = []
    for name, pn, ctype, optional, expr, default, t, has in params:
        if has:
            call.append('a.has_%s' % pn)
        call.append('a.%s' % pn)
    call.append('errp')
    if tret:
        write_typed_call(e, call, types, c)
        if frees:
            c.write('out:\n')
    elif not frees:
        c.write('    return qmp_%s(%s);\n}\n\n' % (cn, ', '.join(call)))
        return
    else:
        c.write('    ret = qmp_%s(%s);\nout:\n' % (cn, ', '.join(call)))
    for f in frees:
        c.write('    %s\n' % f)
    c.write('    return ret;\n}\n\n')


def write_commands(exprs, outdir):
    types = {e['name']: e for e in exprs if e['meta'] in TYPE_METAS}
    commands = [e for e in exprs if e['meta'] == 'command']
    unknown = DICT_COMMANDS - {e['name'] for e in commands}
    if unknown:
        raise SchemaError('DICT_COMMANDS names no command: %s' % ', '.join(sorted(unknown)))
    unknown = RAW_RETURN_COMMANDS - {e['name'] for e in commands if 'returns' in e}
    if unknown:
        raise SchemaError('RAW_RETURN_COMMANDS names no command with a return value: %s'
                          % ', '.join(sorted(unknown)))
    typed = [(e, None if e['name'] in DICT_COMMANDS else command_params(e, types))
             for e in commands]
    with generated(outdir, 'qapi-commands.h',
                   '/*\n * The handler of every command of the schema.  The command table\n'
                   ' * (qapi-commands.c) names each, so a command without a handler\n'
                   ' * fails the link.  A typed handler gets its arguments as C values\n'
                   ' * (an absent optional string, struct, union, alternate or \'any\' is\n'
                   ' * NULL; any other optional argument comes after a has_ flag and\n'
                   ' * holds its schema default when absent).  The marshaller frees what\n'
                   ' * it converted after the call: a handler copies what it keeps.  The\n'
                   ' * others still read a dictionary (DICT_COMMANDS in qapi-gen.py).\n'
                   ' */\n') as h:
        h.write('#include "qapi/qapi-types.h"\n#include "qapi/qmp-registry.h"\n\n')
        for e, params in typed:
            h.write('%s;\n' % handler_prototype(e, params, types))
        h.write('\n')
    with generated(outdir, 'qapi-commands.c') as c:
        c.write('#include "qapi/qapi-commands.h"\n\n')
        for e, params in typed:
            if params is not None:
                write_marshaller(e, params, types, c)
        c.write('const QmpCommandDef qmp_command_table[] = {\n')
        for e, params in typed:
            fn = 'qmp_%s' % c_name(e['name']) if params is None else \
                 'qmp_marshal_%s' % c_name(e['name'])
            c.write('    { "%s", %s },\n' % (e['name'], fn))
        c.write('    { NULL, NULL },\n};\n')


def write_gen(exprs, outdir):
    write_types(exprs, outdir)
    write_events(exprs, outdir)
    write_commands(exprs, outdir)


def main(argv):
    if len(argv) != 4 or argv[1] not in ('--c', '--gen', '--doc'):
        sys.stderr.write('usage: qapi-gen.py --c|--gen|--doc OUTPUT SCHEMA\n')
        return 2
    exprs, sections = [], []
    try:
        load(argv[3], set(), exprs, sections)
        check(exprs)
    except (SchemaError, OSError) as err:
        sys.stderr.write('qapi-gen.py: %s\n' % err)
        return 1
    if argv[1] == '--gen':
        try:
            write_gen(exprs, argv[2])
        except SchemaError as err:
            sys.stderr.write('qapi-gen.py: %s\n' % err)
            return 1
        return 0
    with open(argv[2], 'w', encoding='utf-8') as out:
        if argv[1] == '--c':
            write_c(exprs, out)
        else:
            write_doc(exprs, sections, out)
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv))
