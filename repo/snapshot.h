/* snapshot.h - published snapshots: refs "snapshots/<manifest id>".
 *
 * Publishing writes the manifest object, flushes, then creates the ref:
 * a snapshot is visible only after everything it references is durable. */
#pragma once

#include "repo/manifest.h"

typedef struct {
    CairnId id;
    CairnManifest *manifest;
} CairnSnapshot;

void cairn_snapshot_free(CairnSnapshot *s);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(CairnSnapshot, cairn_snapshot_free)

/* All published snapshots, oldest first (ties by id). name: only this domain. */
GPtrArray *cairn_snapshot_list(CairnRepo *repo, const char *name, GError **error);
/* Same, but snapshots whose manifest cannot be read are described (char*) in
 * ret_broken instead of failing the whole listing. */
GPtrArray *cairn_snapshot_list_full(CairnRepo *repo, const char *name, GPtrArray *ret_broken,
                                    GError **error);
/* Resolve "ID", "ABBREV" (>= 8 hex, either case), "NAME@latest", "NAME@~N",
 * "NAME@TIME". An id loads only the snapshots it matches; a name loads all,
 * and those whose manifest cannot be read are left out and described in
 * ret_broken (optional): one damaged snapshot does not block the others. */
CairnSnapshot *cairn_snapshot_resolve(CairnRepo *repo, const char *spec, GPtrArray *ret_broken,
                                      GError **error);
/* spec is an id or an abbreviation of one (>= 8 hex digits, either case) */
gboolean cairn_snapshot_spec_is_id(const char *spec);
/* The ids of the published snapshots whose hex id starts with prefix,
 * without reading any manifest (for forgetting a damaged one). */
GArray *cairn_snapshot_match_ids(CairnRepo *repo, const char *prefix, GError **error);
/* Same over an already loaded list (borrowed entry). */
CairnSnapshot *cairn_snapshot_resolve_in(GPtrArray *list, const char *spec, GError **error);
CairnSnapshot *cairn_snapshot_load(CairnRepo *repo, const CairnId *id, GError **error);
/* Store the manifest, flush, publish the ref. */
gboolean cairn_snapshot_publish(CairnRepo *repo, const CairnManifest *m, CairnId *ret_id,
                                GError **error);
/* Remove a snapshot's ref (its objects stay until gc). */
gboolean cairn_snapshot_forget(CairnRepo *repo, const CairnId *id, GError **error);
