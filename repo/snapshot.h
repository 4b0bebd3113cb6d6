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
/* Resolve "ID", "ABBREV" (>= 8 hex), "NAME@latest", "NAME@~N", "NAME@TIME". */
CairnSnapshot *cairn_snapshot_resolve(CairnRepo *repo, const char *spec, GError **error);
/* Same over an already loaded list (borrowed entry). */
CairnSnapshot *cairn_snapshot_resolve_in(GPtrArray *list, const char *spec, GError **error);
CairnSnapshot *cairn_snapshot_load(CairnRepo *repo, const CairnId *id, GError **error);
/* Store the manifest, flush, publish the ref. */
gboolean cairn_snapshot_publish(CairnRepo *repo, const CairnManifest *m, CairnId *ret_id,
                                GError **error);
/* Remove a snapshot's ref (its objects stay until gc). */
gboolean cairn_snapshot_forget(CairnRepo *repo, const CairnId *id, GError **error);
