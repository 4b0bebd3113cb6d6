/* manifest.c - snapshot manifests to and from JSON (jansson). */
#include "config.h"

#include <string.h>

#include "common/cleanup.h"
#include "common/util.h"
#include "repo/manifest.h"

static const char *const known_keys[] = {
    "version", "kind", "name", "uuid", "host", "time", "parent", "disks", "domain_xml",
    "tags", "checkpoint", "checkpoint_xml", "consistency", "tool_version", NULL,
};

static void
disk_free(CairnManifestDisk *d)
{
    if (!d)
        return;
    g_free(d->target);
    g_free(d->format);
    g_free(d->source);
    g_free(d->bitmap);
    if (d->extra)
        json_decref(d->extra);
    g_free(d);
}

CairnManifest *
cairn_manifest_new(void)
{
    CairnManifest *m = g_new0(CairnManifest, 1);
    m->disks = g_ptr_array_new_with_free_func((GDestroyNotify) disk_free);
    m->tags = g_ptr_array_new_with_free_func(g_free);
    m->tool_version = g_strdup("cairn " PACKAGE_VERSION);
    m->consistency = g_strdup("crash");
    m->kind = g_strdup("image");
    return m;
}

void
cairn_manifest_free(CairnManifest *m)
{
    if (!m)
        return;
    g_free(m->name);
    g_free(m->uuid);
    g_free(m->host);
    g_ptr_array_unref(m->disks);
    g_ptr_array_unref(m->tags);
    g_free(m->checkpoint);
    g_free(m->consistency);
    g_free(m->kind);
    g_free(m->tool_version);
    if (m->extra)
        json_decref(m->extra);
    g_free(m);
}

CairnManifestDisk *
cairn_manifest_add_disk(CairnManifest *m, const char *target)
{
    CairnManifestDisk *d = g_new0(CairnManifestDisk, 1);
    d->target = g_strdup(target);
    g_ptr_array_add(m->disks, d);
    return d;
}

const CairnManifestDisk *
cairn_manifest_find_disk(const CairnManifest *m, const char *target)
{
    for (guint i = 0; i < m->disks->len; i++) {
        const CairnManifestDisk *d = m->disks->pdata[i];
        if (!strcmp(d->target, target))
            return d;
    }
    return NULL;
}

static json_t *
id_json(const CairnId *id)
{
    char hex[CAIRN_ID_HEX_LEN + 1];
    return json_string(cairn_id_to_hex(id, hex));
}

static json_t *
nullable_string(const char *s)
{
    return s ? json_string(s) : json_null();
}

json_t *
cairn_manifest_to_json_value(const CairnManifest *m)
{
    json_t *o = m->extra ? json_deep_copy(m->extra) : json_object();
    g_autofree char *time = cairn_format_time_utc_frac(m->time, m->time_usec);
    json_object_set_new(o, "version", json_integer(CAIRN_MANIFEST_VERSION));
    json_object_set_new(o, "kind", json_string(m->kind));
    json_object_set_new(o, "name", json_string(m->name));
    json_object_set_new(o, "uuid", nullable_string(m->uuid));
    json_object_set_new(o, "host", nullable_string(m->host));
    json_object_set_new(o, "time", json_string(time));
    json_object_set_new(o, "parent", m->has_parent ? id_json(&m->parent) : json_null());
    json_object_set_new(o, "domain_xml", m->has_domain_xml ? id_json(&m->domain_xml) : json_null());
    json_object_set_new(o, "checkpoint", nullable_string(m->checkpoint));
    json_object_set_new(o, "checkpoint_xml",
                        m->has_checkpoint_xml ? id_json(&m->checkpoint_xml) : json_null());
    json_object_set_new(o, "consistency", json_string(m->consistency));
    json_object_set_new(o, "tool_version", json_string(m->tool_version));
    json_t *tags = json_array();
    for (guint i = 0; i < m->tags->len; i++)
        json_array_append_new(tags, json_string(m->tags->pdata[i]));
    json_object_set_new(o, "tags", tags);
    json_t *disks = json_array();
    for (guint i = 0; i < m->disks->len; i++) {
        const CairnManifestDisk *d = m->disks->pdata[i];
        json_t *dj = json_pack("{s:s, s:o, s:o, s:o, s:I, s:o, s:I, s:I}", "target", d->target,
                      "format", nullable_string(d->format), "source", nullable_string(d->source),
                      "bitmap", nullable_string(d->bitmap),
                      "virtual_size", (json_int_t) d->virtual_size, "index", id_json(&d->index),
                      "bytes_read", (json_int_t) d->bytes_read,
                      "bytes_new", (json_int_t) d->bytes_new);
        if (d->extra) {
            const char *k;
            json_t *v;
            json_object_foreach(d->extra, k, v)
                if (!json_object_get(dj, k))
                    json_object_set(dj, k, v);
        }
        json_array_append_new(disks, dj);
    }
    json_object_set_new(o, "disks", disks);
    return o;
}

char *
cairn_manifest_to_json(const CairnManifest *m, size_t *ret_len)
{
    g_autoptr(CairnJson) o = cairn_manifest_to_json_value(m);
    char *s = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
    *ret_len = strlen(s);
    return s;
}

static gboolean
fail(GError **error, const char *why, const char *key)
{
    g_set_error(error, CAIRN_REPO_ERROR, CAIRN_REPO_ERROR_CORRUPT,
                "invalid snapshot manifest: %s '%s'", why, key);
    return FALSE;
}

static gboolean
get_string(json_t *o, const char *key, gboolean nullable, char **ret, GError **error)
{
    json_t *v = json_object_get(o, key);
    if ((!v || json_is_null(v)) && nullable) {
        *ret = NULL;
        return TRUE;
    }
    if (!json_is_string(v))
        return fail(error, "missing or non-string field", key);
    *ret = g_strdup(json_string_value(v));
    return TRUE;
}

static gboolean
get_id(json_t *o, const char *key, gboolean *ret_has, CairnId *ret_id, GError **error)
{
    json_t *v = json_object_get(o, key);
    if (!v || json_is_null(v)) {
        if (ret_has) {
            *ret_has = FALSE;
            return TRUE;
        }
        return fail(error, "missing object id", key);
    }
    if (!json_is_string(v) || !cairn_id_from_hex(json_string_value(v), ret_id))
        return fail(error, "malformed object id in", key);
    if (ret_has)
        *ret_has = TRUE;
    return TRUE;
}

static gboolean
get_u64(json_t *o, const char *key, uint64_t *ret, GError **error)
{
    json_t *v = json_object_get(o, key);
    if (!json_is_integer(v) || json_integer_value(v) < 0)
        return fail(error, "missing or negative integer", key);
    *ret = (uint64_t) json_integer_value(v);
    return TRUE;
}

static gboolean
parse_disks(CairnManifest *m, json_t *arr, GError **error)
{
    if (!json_is_array(arr))
        return fail(error, "missing array", "disks");
    size_t i;
    json_t *dj;
    json_array_foreach(arr, i, dj) {
        if (!json_is_object(dj))
            return fail(error, "non-object entry in", "disks");
        g_autofree char *target = NULL;
        if (!get_string(dj, "target", FALSE, &target, error))
            return FALSE;
        if (cairn_manifest_find_disk(m, target))
            return fail(error, "duplicate disk target", target);
        CairnManifestDisk *d = cairn_manifest_add_disk(m, target);
        if (!get_string(dj, "format", TRUE, &d->format, error) ||
            !get_string(dj, "source", TRUE, &d->source, error) ||
            !get_string(dj, "bitmap", TRUE, &d->bitmap, error) ||
            !get_u64(dj, "virtual_size", &d->virtual_size, error) ||
            !get_id(dj, "index", NULL, &d->index, error))
            return FALSE;
        static const char *const disk_keys[] = { "target", "format", "source", "bitmap",
            "virtual_size", "index", "bytes_read", "bytes_new", NULL };
        const char *k;
        json_t *v;
        json_object_foreach(dj, k, v) {
            if (g_strv_contains(disk_keys, k))
                continue;
            if (!d->extra)
                d->extra = json_object();
            json_object_set(d->extra, k, v);
        }
        if ((v = json_object_get(dj, "bytes_read")) && json_is_integer(v))
            d->bytes_read = (uint64_t) json_integer_value(v);
        if ((v = json_object_get(dj, "bytes_new")) && json_is_integer(v))
            d->bytes_new = (uint64_t) json_integer_value(v);
    }
    return TRUE;
}

CairnManifest *
cairn_manifest_from_json(const char *text, size_t len, GError **error)
{
    json_error_t jerr;
    g_autoptr(CairnJson) o = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!o || !json_is_object(o)) {
        g_set_error(error, CAIRN_REPO_ERROR, CAIRN_REPO_ERROR_CORRUPT,
                    "invalid snapshot manifest: %s", o ? "not a JSON object" : jerr.text);
        return NULL;
    }
    json_t *ver = json_object_get(o, "version");
    if (!json_is_integer(ver) || json_integer_value(ver) < 1) {
        fail(error, "missing or bad", "version");
        return NULL;
    }
    if (json_integer_value(ver) > CAIRN_MANIFEST_VERSION) {
        g_set_error(error, CAIRN_REPO_ERROR, CAIRN_REPO_ERROR_NEWER_FORMAT,
                    "snapshot manifest version %" JSON_INTEGER_FORMAT
                    " is newer than this cairn reads (%d): upgrade cairn",
                    json_integer_value(ver), CAIRN_MANIFEST_VERSION);
        return NULL;
    }
    g_autoptr(CairnManifest) m = cairn_manifest_new();
    g_clear_pointer(&m->kind, g_free);
    g_clear_pointer(&m->consistency, g_free);
    g_clear_pointer(&m->tool_version, g_free);
    g_autofree char *time = NULL;
    if (!get_string(o, "kind", FALSE, &m->kind, error) ||
        !get_string(o, "name", FALSE, &m->name, error) ||
        !get_string(o, "uuid", TRUE, &m->uuid, error) ||
        !get_string(o, "host", TRUE, &m->host, error) ||
        !get_string(o, "time", FALSE, &time, error) ||
        !get_id(o, "parent", &m->has_parent, &m->parent, error) ||
        !get_id(o, "domain_xml", &m->has_domain_xml, &m->domain_xml, error) ||
        !get_string(o, "checkpoint", TRUE, &m->checkpoint, error) ||
        !get_id(o, "checkpoint_xml", &m->has_checkpoint_xml, &m->checkpoint_xml, error) ||
        !get_string(o, "consistency", FALSE, &m->consistency, error) ||
        !get_string(o, "tool_version", FALSE, &m->tool_version, error) ||
        !parse_disks(m, json_object_get(o, "disks"), error))
        return NULL;
    if (!*m->name) {
        fail(error, "empty", "name");
        return NULL;
    }
    g_autoptr(GError) terr = NULL;
    if (!cairn_parse_time_frac(time, &m->time, &m->time_usec, &terr)) {
        fail(error, "bad time in", "time");
        return NULL;
    }
    json_t *tags = json_object_get(o, "tags");
    if (tags && !json_is_array(tags)) {
        fail(error, "non-array", "tags");
        return NULL;
    }
    size_t i;
    json_t *t;
    json_array_foreach(tags, i, t) {
        if (!json_is_string(t)) {
            fail(error, "non-string entry in", "tags");
            return NULL;
        }
        g_ptr_array_add(m->tags, g_strdup(json_string_value(t)));
    }
    /* keep unknown keys so a rewrite by this version loses nothing */
    m->extra = json_object();
    const char *key;
    json_t *v;
    json_object_foreach(o, key, v) {
        if (!g_strv_contains(known_keys, key))
            json_object_set(m->extra, key, v);
    }
    return g_steal_pointer(&m);
}
