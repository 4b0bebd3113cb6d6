/* spawn.h - start a program as a child, or detached: a grandchild in a
 * session of its own that outlives us and that no signal of our terminal
 * or our death reaches. */
#pragma once

#include <glib.h>
#include <sys/types.h>

/* Start argv[0] (an absolute path) with env; stdin and stdout on
 * /dev/null, stderr on log_fd (inherited when log_fd < 0), no other
 * descriptor, default signal dispositions and an empty signal mask.
 *
 * detach FALSE: our child (*ret_child TRUE): waitpid() it.
 * detach TRUE: a grandchild whose parent has exited and been reaped
 * before argv[0] runs (*ret_child FALSE): a parent-death signal that the
 * program sets for itself (nbdkit 1.32 always does) is never fired by our
 * side. Watch it through a pidfd.
 *
 * Returns the pid, or -1 with error set. */
pid_t cairn_spawn(char **argv, char **env, int log_fd, gboolean detach, gboolean *ret_child,
                  GError **error);
