/* workspace.h - host-local state of jobs: per-domain locks, the private
 * runtime directory for NBD sockets and scratch files, the QEMU user. */
#pragma once

#include <glib.h>
#include <sys/types.h>

/* $CAIRN_RUN_DIR or /run/cairn */
const char *cairn_run_dir(void);

typedef struct CairnDomainLock CairnDomainLock;
/* Exclusive per-domain lock (flock): BUSY when another cairn backs it up. */
CairnDomainLock *cairn_domain_lock(const char *uuid, const char *name, GError **error);
void cairn_domain_unlock(CairnDomainLock *l);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(CairnDomainLock, cairn_domain_unlock)

/* The QEMU process's user/group (qemu.conf 'user', default libvirt-qemu). */
void cairn_qemu_user(uid_t *ret_uid, gid_t *ret_gid);

/* $CAIRN_SCRATCH_DIR or /var/lib/cairn/scratch: on disk, not in RAM, as
 * scratch files grow with the guest's writes during a backup */
const char *cairn_scratch_base(void);

/* (Re)create BASE/UUID empty and writable by QEMU (NBD socket: base
 * RUN_DIR/jobs; scratch files: cairn_scratch_base()). Anything left there by
 * a killed run is removed and counted in *ret_leftovers (may be NULL). */
char *cairn_job_dir_prepare(const char *base, const char *uuid, guint *ret_leftovers,
                            GError **error);
void cairn_job_dir_remove(const char *dir);
