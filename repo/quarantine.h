/* quarantine.h - damaged objects set aside, so that backups repair them.
 *
 * verify moves an object that fails its check (corrupt, truncated, not
 * authentic) from objects/ to quarantine/<id>, and marks a missing one
 * there (empty). The object is then absent: the next backup that reads the
 * same data stores it again (put-if-absent), which repairs every snapshot
 * that references it (same content, same id), and the next push sends it
 * to remotes again. Incremental backups would keep the parent's entry for
 * an unchanged chunk without reading it: they read again every chunk whose
 * parent entry is in cairn_repo_damaged(). gc removes the entries of
 * objects that are whole again. */
#pragma once

#include "repo/repo.h"

/* Set the object aside: its stored bytes (if any) to quarantine/<id>, then
 * it is removed from objects/ — unless it is whole now (checked again right
 * before: a backup may have stored it meanwhile): *ret_moved says which. */
gboolean cairn_repo_quarantine(CairnRepo *repo, const CairnId *id, gboolean *ret_moved,
                               GError **error);

/* The ids in quarantine/ whose object is still absent (CairnId* set; empty
 * when none), from one listing of each. */
GHashTable *cairn_repo_damaged(CairnRepo *repo, GError **error);

/* Remove the quarantine entries of objects present again, and (live: the
 * set of every object a snapshot references, may be NULL) of objects no
 * snapshot needs any more; *ret_removed: how many. */
gboolean cairn_repo_quarantine_clear(CairnRepo *repo, GHashTable *live, guint *ret_removed,
                                     GError **error);
