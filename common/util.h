/* util.h - small helpers shared by every folder: sizes, times, hex, files. */
#pragma once

#include <glib.h>
#include <stdint.h>
#include <stdbool.h>

#define CAIRN_UTIL_ERROR (cairn_util_error_quark())
GQuark cairn_util_error_quark(void);

typedef enum {
    CAIRN_UTIL_ERROR_PARSE,   /* malformed size, duration or time */
    CAIRN_UTIL_ERROR_IO,      /* a system call failed; message has strerror */
    CAIRN_UTIL_ERROR_NOSPACE, /* ENOSPC / EDQUOT */
    CAIRN_UTIL_ERROR_CANCELLED, /* interrupted by a signal (cairn_cancelled) */
} CairnUtilError;

/* "64K", "1M", "1MiB", "4096" -> bytes (binary units) */
gboolean cairn_parse_size(const char *text, uint64_t *ret_bytes, GError **error);
/* "0", "30s", "15m", "1h", "7d" -> seconds */
gboolean cairn_parse_duration(const char *text, int64_t *ret_seconds, GError **error);
/* "10%", "2.5%", "100%" -> 0..100 (the % sign is required) */
gboolean cairn_parse_percent(const char *text, double *ret_percent, GError **error);
/* "2026-11-20T02:00[:SS][Z]" or "2026-11-20" (local time unless Z) -> unix seconds */
gboolean cairn_parse_time(const char *text, int64_t *ret_unix, GError **error);
/* same, also accepting a fraction "…:02.123456Z" */
gboolean cairn_parse_time_frac(const char *text, int64_t *ret_unix, int32_t *ret_usec,
                               GError **error);
/* "2026-11-25T11:32:02.123456Z" */
char *cairn_format_time_utc_frac(int64_t unix_seconds, int32_t usec);
int64_t cairn_now_us(void);
/* unix seconds -> "2026-11-25T11:32:02Z" */
char *cairn_format_time_utc(int64_t unix_seconds);
/* bytes -> "1.5 GiB" */
char *cairn_format_size(uint64_t bytes);

void cairn_hex_encode(const uint8_t *bytes, size_t len, char *ret_hex /* 2*len+1 */);
gboolean cairn_hex_decode(const char *hex, uint8_t *ret_bytes, size_t len);
gboolean cairn_is_hex(const char *text, size_t min_len, size_t max_len);

/* Set *error from errno with "what 'subject': strerror"; maps ENOSPC to NOSPACE. */
void cairn_set_errno(GError **error, int errsv, const char *what, const char *subject);

/* the line (1-based) of a GKeyFile text whose first word is 'word' (a key
 * before '=', or a "[group]" header), for messages; 0 when there is none */
int cairn_key_file_line(const char *text, const char *word);

/* write all of buf at offset (pwrite loop) / at the current position */
gboolean cairn_pwrite_all(int fd, const void *buf, size_t len, uint64_t offset,
                          const char *path, GError **error);
gboolean cairn_write_all(int fd, const void *buf, size_t len, const char *path,
                         GError **error);
/* read a whole (small) file */
gboolean cairn_read_file(const char *path, uint8_t **ret_data, size_t *ret_len,
                         GError **error);
/* Durable replace: temp in the same directory, fsync, rename, fsync dir. */
gboolean cairn_write_file_durable(const char *path, const void *data, size_t len,
                                  int mode, GError **error);
gboolean cairn_fsync_dir(const char *dir, GError **error);
/* mkdir -p */
gboolean cairn_mkdir_p(const char *path, int mode, GError **error);

bool cairn_is_all_zero(const void *buf, size_t len);
/* 16 random hex characters (for temp names, lock ids) */
char *cairn_random_hex(size_t nbytes);
int64_t cairn_now(void);   /* unix seconds; $CAIRN_FAKE_NOW overrides for tests */
/* Cancellation by signal: cairn_cancel_on_signals() makes SIGINT, SIGTERM
 * and SIGHUP set a flag (and interrupt blocking calls) instead of killing the
 * process; long loops poll cairn_cancelled() and fail with
 * cairn_set_cancelled(), so that their error paths clean up (end the libvirt
 * job, thaw the guest, remove scratch files). */
void cairn_cancel_on_signals(void);
int cairn_cancelled(void); /* the signal number, or 0 */
void cairn_set_cancelled(GError **error, const char *what);
/* a short "did you mean" suggestion from candidates, or NULL */
const char *cairn_closest(const char *word, const char *const *candidates);
