/* verify.h - check a repository's snapshots: structure, or every byte. */
#pragma once

#include "repo/snapshot.h"

typedef struct {
    guint snapshots;
    guint64 indexes;
    guint64 chunks;          /* distinct chunks referenced */
    guint64 objects_read;    /* objects fully read and re-hashed */
    guint64 chunks_read;     /* of the chunks: how many were read (a sample or all) */
    GPtrArray *problems;     /* char*: one line per problem, naming object and snapshots */
    GArray *damaged;         /* CairnId: objects found corrupt or missing (not those that
                              * could not be read for another reason, e.g. the network) */
} CairnVerifyReport;

void cairn_verify_report_clear(CairnVerifyReport *r);

/* Check the given snapshots (CairnSnapshot*, NULL = all). Structure: every
 * manifest and index decodes and verifies, every referenced object exists.
 * read_data: every referenced chunk is read, authenticated and re-hashed.
 * Returns FALSE only when the check itself could not run; problems found
 * are in the report. */
gboolean cairn_verify(CairnRepo *repo, GPtrArray *snapshots, gboolean read_data,
                      CairnVerifyReport *ret_report, GError **error);

/* The same with a share of the chunks read: read_percent (0 to 100) of the
 * distinct referenced chunks, a new random sample each time, are read,
 * authenticated and re-hashed; below 100 every chunk's presence is checked
 * as well. 0 is the structure check, 100 the same as read_data. */
gboolean cairn_verify_sample(CairnRepo *repo, GPtrArray *snapshots, double read_percent,
                             CairnVerifyReport *ret_report, GError **error);

/* Without the key of an encrypted repository: check every object's stored
 * bytes (header and trailing SHA-256) and that every ref has its manifest. */
gboolean cairn_verify_stored(CairnRepo *repo, CairnVerifyReport *ret_report, GError **error);

/* Set of the ids of every object present (one listing). */
GHashTable *cairn_repo_list_objects(CairnRepo *repo, GPtrArray **ret_entries, GError **error);
