// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The QMP commands a management application asks when it probes the
 * binary (libvirt's capability probe): target, accelerator, machines, CPU
 * models, QOM types and their properties, command-line options and the
 * introspected schema.  Every answer is about this program: a machine with
 * no CPU emulation and no accelerator, with the device and object types it
 * really implements.
 */
#include <string.h>
#include <glib.h>

#include "qapi/qapi-commands.h"
#include "qapi/qmp-registry.h"
#include "qom/object.h"
#include "block/block.h"
#include "hw/qdev.h"
#include "system/hostmem.h"
#include "system/machine-qmp.h"

extern const char qapi_introspection_json[];

TargetInfo *qmp_query_target(Error **errp)
{
    TargetInfo *info = g_new0(TargetInfo, 1);

    info->arch = SYS_EMU_TARGET_X86_64;
    return info;
}

KvmInfo *qmp_query_kvm(Error **errp)
{
    /* enabled and present: false */
    return g_new0(KvmInfo, 1);
}

/*
 * The machine types -machine accepts (hw/qdev.c's machine_init).  One
 * CPU: -smp 1 is what every guest definition names, and -smp has no effect
 * here; more would promise something no machine of this program has.
 */
static const struct {
    const char *name, *desc;
    bool is_default;
} machines[] = {
    { "pc", "Standard PC (i440FX + PIIX, 1996)", true },
    { "none", "empty machine", false },
};

MachineInfoList *qmp_query_machines(Error **errp)
{
    MachineInfoList *head = NULL, **tail = &head;

    for (size_t i = 0; i < G_N_ELEMENTS(machines); i++) {
        MachineInfo *m = g_new0(MachineInfo, 1);

        m->name = g_strdup(machines[i].name);
        m->cpu_max = 1;
        /* hotpluggable-cpus, numa-mem-supported, deprecated: false */
        if (machines[i].is_default) {
            m->has_is_default = true;
            m->is_default = true;
        }
        *tail = g_new0(MachineInfoList, 1);
        (*tail)->value = m;
        tail = &(*tail)->next;
    }
    return head;
}

CpuDefinitionInfoList *qmp_query_cpu_definitions(Error **errp)
{
    /* No CPU is emulated: there is no model to offer. */
    return NULL;
}

CpuModelExpansionInfo *qmp_query_cpu_model_expansion(CpuModelExpansionType type,
                                                     CpuModelInfo *model, Error **errp)
{
    error_setg(errp, "CPU model '%s' not found (this machine emulates no CPU)", model->name);
    return NULL;
}

CpuInfoFastList *qmp_query_cpus_fast(Error **errp)
{
    /* No CPU object, no vCPU thread: nothing to list (QEMU's "none" alike). */
    return NULL;
}

HotpluggableCPUList *qmp_query_hotpluggable_cpus(Error **errp)
{
    /* QEMU's answer on a machine without hot-pluggable CPUs (all of ours). */
    error_setg(errp, "The feature 'query-hotpluggable-cpus' is not enabled");
    return NULL;
}

TpmModelList *qmp_query_tpm_models(Error **errp)
{
    return NULL;    /* no TPM device */
}

TpmTypeList *qmp_query_tpm_types(Error **errp)
{
    return NULL;    /* no TPM backend */
}

SevCapability *qmp_query_sev_capabilities(Error **errp)
{
    error_setg(errp, "SEV is not available (this machine emulates no CPU)");
    return NULL;
}

SgxInfo *qmp_query_sgx_capabilities(Error **errp)
{
    error_setg(errp, "SGX is not available (this machine emulates no CPU)");
    return NULL;
}

/*
 * The command-line options with a fixed parameter set, as vl.c,
 * monitor/chardev.c and monitor/monitor.c parse them.
 */
typedef struct CmdlineParam {
    const char *name;
    CommandLineParameterType type;
} CmdlineParam;

#define STRING COMMAND_LINE_PARAMETER_TYPE_STRING
#define BOOLEAN COMMAND_LINE_PARAMETER_TYPE_BOOLEAN
static const CmdlineParam machine_params[] = {
    { "type", STRING }, { "accel", STRING }, { NULL },
};
static const CmdlineParam chardev_params[] = {
    { "backend", STRING }, { "id", STRING }, { "path", STRING }, { "host", STRING },
    { "port", STRING }, { "server", BOOLEAN }, { "wait", BOOLEAN }, { NULL },
};
static const CmdlineParam mon_params[] = {
    { "chardev", STRING }, { "mode", STRING }, { "pretty", BOOLEAN }, { NULL },
};
#undef STRING
#undef BOOLEAN

static const struct {
    const char *option;
    const CmdlineParam *params;
} cmdline_options[] = {
    { "machine", machine_params },
    { "chardev", chardev_params },
    { "mon", mon_params },
};

CommandLineOptionInfoList *qmp_query_command_line_options(const char *option, Error **errp)
{
    g_autoptr(CommandLineOptionInfoList) head = NULL;
    CommandLineOptionInfoList **tail = &head;

    for (size_t i = 0; i < G_N_ELEMENTS(cmdline_options); i++) {
        CommandLineOptionInfo *info;
        CommandLineParameterInfoList **ptail;

        if (option && strcmp(option, cmdline_options[i].option)) {
            continue;
        }
        info = g_new0(CommandLineOptionInfo, 1);
        info->option = g_strdup(cmdline_options[i].option);
        ptail = &info->parameters;
        for (const CmdlineParam *p = cmdline_options[i].params; p->name; p++) {
            *ptail = g_new0(CommandLineParameterInfoList, 1);
            (*ptail)->value = g_new0(CommandLineParameterInfo, 1);
            (*ptail)->value->name = g_strdup(p->name);
            (*ptail)->value->type = p->type;
            ptail = &(*ptail)->next;
        }
        *tail = g_new0(CommandLineOptionInfoList, 1);
        (*tail)->value = info;
        tail = &(*tail)->next;
    }
    if (option && !head) {
        error_setg(errp, "invalid option name: %s", option);
        return NULL;
    }
    return g_steal_pointer(&head);
}

/*
 * QOM types: "object", the machine types, the device types (hw/qdev.c)
 * and the user-creatable object types (qom/object.c).
 */
typedef struct TypeListing {
    ObjectTypeInfoList **tail;      /* where the next type goes */
    const char *implements;
    bool abstract;
} TypeListing;

static const char *type_parent(const char *name, bool *is_abstract);

static bool type_implements(const char *name, const char *ancestor)
{
    bool is_abstract;

    for (const char *t = name; t; t = type_parent(t, &is_abstract)) {
        if (!strcmp(t, ancestor)) {
            return true;
        }
    }
    return false;
}

static void list_one_type(void *opaque, const char *name, const char *parent, bool is_abstract)
{
    TypeListing *tl = opaque;
    ObjectTypeInfo *t;

    if ((is_abstract && !tl->abstract) ||
        (tl->implements && !type_implements(name, tl->implements))) {
        return;
    }
    t = g_new0(ObjectTypeInfo, 1);
    t->name = g_strdup(name);
    /* "abstract" only when true, as QEMU */
    t->has_abstract = t->abstract = is_abstract;
    t->parent = g_strdup(parent);
    *tl->tail = g_new0(ObjectTypeInfoList, 1);
    (*tl->tail)->value = t;
    tl->tail = &(*tl->tail)->next;
}

/*
 * Types that are neither machines, devices nor user-creatable objects: the
 * roots, and the accelerators -accel and accel= accept (tcg and qtest: no
 * guest code runs under either).
 */
static const struct {
    const char *name, *parent;
    bool is_abstract;
} fixed_types[] = {
    { "object", NULL, true },
    { "machine", "object", true },
    { "accel", "object", true },
    { "tcg-accel", "accel", false },
    { "qtest-accel", "accel", false },
    { "memory-backend", "object", true },
};

static const char *object_type_parent(const char *name)
{
    return g_str_has_prefix(name, "memory-backend-") ? "memory-backend" : "object";
}

static void list_object_type(void *opaque, const char *name)
{
    list_one_type(opaque, name, object_type_parent(name), false);
}

static bool machine_type_name(const char *type, size_t *index)
{
    for (size_t i = 0; i < G_N_ELEMENTS(machines); i++) {
        g_autofree char *qom = g_strdup_printf("%s-machine", machines[i].name);
        if (!strcmp(qom, type)) {
            *index = i;
            return true;
        }
    }
    return false;
}

static const char *type_parent(const char *name, bool *is_abstract)
{
    const char *p;
    size_t m;

    *is_abstract = false;
    for (size_t i = 0; i < G_N_ELEMENTS(fixed_types); i++) {
        if (!strcmp(name, fixed_types[i].name)) {
            *is_abstract = fixed_types[i].is_abstract;
            return fixed_types[i].parent;
        }
    }
    if (machine_type_name(name, &m)) {
        return "machine";
    }
    p = qdev_type_parent(name, is_abstract);
    if (p) {
        return p;
    }
    if (user_creatable_type_exists(name)) {
        return object_type_parent(name);
    }
    return NULL;
}

static bool type_exists(const char *name)
{
    bool is_abstract;

    return !strcmp(name, "object") || type_parent(name, &is_abstract);
}

ObjectTypeInfoList *qmp_qom_list_types(const char *implements, bool has_abstract,
                                       bool abstract, Error **errp)
{
    ObjectTypeInfoList *head = NULL;
    TypeListing tl = {
        .tail = &head,
        .implements = implements,
        .abstract = abstract,
    };

    for (size_t i = 0; i < G_N_ELEMENTS(fixed_types); i++) {
        list_one_type(&tl, fixed_types[i].name, fixed_types[i].parent,
                      fixed_types[i].is_abstract);
    }
    for (size_t i = 0; i < G_N_ELEMENTS(machines); i++) {
        g_autofree char *qom = g_strdup_printf("%s-machine", machines[i].name);
        list_one_type(&tl, qom, "machine", false);
    }
    qdev_list_types(list_one_type, &tl);
    user_creatable_list_types(list_object_type, &tl);
    return head;
}

static json_t *prop(const char *name, const char *type, const char *desc)
{
    json_t *p = json_pack("{s:s,s:s}", "name", name, "type", type);

    if (desc) {
        json_object_set_new(p, "description", json_string(desc));
    }
    return p;
}

/* What -object/object-add accept for each type (crypto/secret.c, ...). */
static json_t *object_type_properties(const char *name)
{
    json_t *list = json_array();

    if (!strcmp(name, "secret")) {
        json_array_append_new(list, prop("data", "string", "the secret's bytes"));
        json_array_append_new(list, prop("file", "string", "a file holding the secret"));
        json_array_append_new(list, prop("format", "QCryptoSecretFormat", "raw or base64"));
        json_array_append_new(list, prop("keyid", "string",
                                         "the secret whose AES-256 key encrypted the data"));
        json_array_append_new(list, prop("iv", "string", "the CBC IV, base64"));
    } else if (!strcmp(name, "iothread")) {
        json_array_append_new(list, prop("poll-max-ns", "int", NULL));
        json_array_append_new(list, prop("poll-grow", "int", NULL));
        json_array_append_new(list, prop("poll-shrink", "int", NULL));
        json_array_append_new(list, prop("aio-max-batch", "int", NULL));
    } else if (g_str_has_prefix(name, "memory-backend-")) {
        /* system/hostmem.c: sizes and flags only; there is no guest RAM. */
        json_array_append_new(list, prop("size", "int", "size of the memory region"));
        json_array_append_new(list, prop("share", "bool", NULL));
        json_array_append_new(list, prop("prealloc", "bool", "accepted; no effect"));
        json_array_append_new(list, prop("dump", "bool", "accepted; no effect"));
        json_array_append_new(list, prop("merge", "bool", "accepted; no effect"));
        if (!strcmp(name, "memory-backend-file")) {
            json_array_append_new(list, prop("mem-path", "string", NULL));
        }
    } else if (!strcmp(name, "throttle-group")) {
        json_array_append_new(list, prop("limits", "ThrottleLimits", NULL));
    }
    return list;
}

QObject *qmp_device_list_properties(const char *name, Error **errp)
{
    bool is_abstract;
    json_t *props;

    if (!type_exists(name)) {
        error_set(errp, ERROR_CLASS_DEVICE_NOT_FOUND, "Device '%s' not found", name);
        return NULL;
    }
    props = qdev_model_properties(name);
    if (!props || (type_parent(name, &is_abstract) && is_abstract)) {
        json_decref(props);
        error_setg(errp, "Parameter 'typename' expects a non-abstract device type");
        return NULL;
    }
    return props;
}

QObject *qmp_qom_list_properties(const char *name, Error **errp)
{
    json_t *props;

    if (!type_exists(name)) {
        error_set(errp, ERROR_CLASS_DEVICE_NOT_FOUND, "Class '%s' not found", name);
        return NULL;
    }
    props = qdev_model_properties(name);
    if (!props) {
        props = user_creatable_type_exists(name) ? object_type_properties(name) : json_array();
    }
    /* A machine type has no property but this one: -machine takes only accel= besides. */
    json_array_insert_new(props, 0, prop("type", "string", NULL));
    return props;
}

QObject *qmp_qom_list(const char *path, Error **errp)
{
    return qdev_qom_list(path, errp);
}

json_t *qmp_qom_get(const char *path, const char *property, Error **errp)
{
    return qdev_qom_get(path, property, errp);
}

QObject *qmp_qom_set(const char *path, const char *property, json_t *value, Error **errp)
{
    if (!qdev_qom_set(path, property, value, errp)) {
        return NULL;
    }
    return qdict_new();
}

QObject *qmp_query_qmp_schema(Error **errp)
{
    json_error_t jerr;
    json_t *schema = json_loads(qapi_introspection_json, 0, &jerr);

    /* Generated from the checked schema at build time. */
    g_assert(schema);
    return schema;
}

void machine_qmp_register_commands(void)
{
    hostmem_register_types();
    qmp_enable_command("query-target");
    qmp_enable_command("query-kvm");
    qmp_enable_command("query-machines");
    qmp_enable_command("query-cpu-definitions");
    qmp_enable_command("query-cpu-model-expansion");
    qmp_enable_command("query-cpus-fast");
    qmp_enable_command("query-hotpluggable-cpus");
    qmp_enable_command("query-tpm-models");
    qmp_enable_command("query-tpm-types");
    qmp_enable_command("query-sev-capabilities");
    qmp_enable_command("query-sgx-capabilities");
    qmp_enable_command("query-command-line-options");
    qmp_enable_command("qom-list-types");
    qmp_enable_command("device-list-properties");
    qmp_enable_command("qom-list-properties");
    qmp_enable_command("query-qmp-schema");
    qmp_enable_command("qom-list");
    qmp_enable_command("qom-get");
    qmp_enable_command("qom-set");
}
