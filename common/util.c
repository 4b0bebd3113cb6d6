/* util.c - small helpers shared by every folder. */
#include "config.h"

#include <errno.h>
#include <signal.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <openssl/rand.h>

#include "common/cleanup.h"
#include "common/util.h"

G_DEFINE_QUARK(cairn-util-error-quark, cairn_util_error)

gboolean
cairn_parse_size(const char *text, uint64_t *ret_bytes, GError **error)
{
    char *end = NULL;
    errno = 0;
    guint64 n = g_ascii_isdigit(text[0]) ? g_ascii_strtoull(text, &end, 10) : 0;
    if (!g_ascii_isdigit(text[0]) || errno || end == text) {
        g_set_error(error, CAIRN_UTIL_ERROR, CAIRN_UTIL_ERROR_PARSE,
                    "invalid size '%s': expected a number with an optional unit (K, M, G, T)", text);
        return FALSE;
    }
    uint64_t mult = 1;
    switch (g_ascii_toupper(*end)) {
    case '\0': break;
    case 'B': break;
    case 'K': mult = 1ULL << 10; break;
    case 'M': mult = 1ULL << 20; break;
    case 'G': mult = 1ULL << 30; break;
    case 'T': mult = 1ULL << 40; break;
    default:
        g_set_error(error, CAIRN_UTIL_ERROR, CAIRN_UTIL_ERROR_PARSE,
                    "invalid size '%s': unknown unit '%s' (use K, M, G or T)", text, end);
        return FALSE;
    }
    if (*end) {
        const char *rest = end + 1;
        gboolean bytes_unit = *end == 'B' || *end == 'b';
        if (*rest && (bytes_unit || (g_ascii_strcasecmp(rest, "iB") != 0 &&
                                     g_ascii_strcasecmp(rest, "B") != 0))) {
            g_set_error(error, CAIRN_UTIL_ERROR, CAIRN_UTIL_ERROR_PARSE,
                        "invalid size '%s': unknown unit '%s' (use K, M, G or T)", text, end);
            return FALSE;
        }
    }
    if (mult > 1 && n > UINT64_MAX / mult) {
        g_set_error(error, CAIRN_UTIL_ERROR, CAIRN_UTIL_ERROR_PARSE, "size '%s' is too large", text);
        return FALSE;
    }
    *ret_bytes = n * mult;
    return TRUE;
}

gboolean
cairn_parse_duration(const char *text, int64_t *ret_seconds, GError **error)
{
    char *end = NULL;
    errno = 0;
    gint64 n = g_ascii_isdigit(text[0]) ? g_ascii_strtoll(text, &end, 10) : -1;
    if (errno || end == text || n < 0) {
        g_set_error(error, CAIRN_UTIL_ERROR, CAIRN_UTIL_ERROR_PARSE,
                    "invalid duration '%s': expected e.g. 30s, 15m, 1h, 7d", text);
        return FALSE;
    }
    int64_t mult;
    if (!*end || !strcmp(end, "s")) mult = 1;
    else if (!strcmp(end, "m") || !strcmp(end, "min")) mult = 60;
    else if (!strcmp(end, "h")) mult = 3600;
    else if (!strcmp(end, "d")) mult = 86400;
    else if (!strcmp(end, "w")) mult = 7 * 86400;
    else {
        g_set_error(error, CAIRN_UTIL_ERROR, CAIRN_UTIL_ERROR_PARSE,
                    "invalid duration '%s': unknown unit '%s' (use s, m, h, d or w)", text, end);
        return FALSE;
    }
    if (n > INT64_MAX / mult) {
        g_set_error(error, CAIRN_UTIL_ERROR, CAIRN_UTIL_ERROR_PARSE,
                    "duration '%s' is too large", text);
        return FALSE;
    }
    *ret_seconds = n * mult;
    return TRUE;
}

gboolean
cairn_parse_percent(const char *text, double *ret_percent, GError **error)
{
    size_t len = strlen(text), dots = 0;
    gboolean ok = len >= 2 && text[len - 1] == '%' && g_ascii_isdigit(text[0]) &&
                  g_ascii_isdigit(text[len - 2]);
    for (size_t i = 0; ok && i + 1 < len; i++) {
        if (text[i] == '.')
            dots++;
        else if (!g_ascii_isdigit(text[i]))
            ok = FALSE;
    }
    if (!ok || dots > 1) {
        g_set_error(error, CAIRN_UTIL_ERROR, CAIRN_UTIL_ERROR_PARSE,
                    "invalid percentage '%s': expected e.g. 10%% or 2.5%%", text);
        return FALSE;
    }
    double v = g_ascii_strtod(text, NULL);
    if (v > 100.0) {
        g_set_error(error, CAIRN_UTIL_ERROR, CAIRN_UTIL_ERROR_PARSE,
                    "invalid percentage '%s': at most 100%%", text);
        return FALSE;
    }
    *ret_percent = v;
    return TRUE;
}

gboolean
cairn_parse_time(const char *text, int64_t *ret_unix, GError **error)
{
    int32_t usec;
    return cairn_parse_time_frac(text, ret_unix, &usec, error);
}

gboolean
cairn_parse_time_frac(const char *text, int64_t *ret_unix, int32_t *ret_usec, GError **error)
{
    int32_t usec = 0;
    /* only digits and the separators: sscanf would take signs and spaces */
    for (const char *c = text; *c; c++)
        if (!g_ascii_isdigit(*c) && !strchr("-T :.Zz", *c))
            goto bad;
    if (strstr(text, "--") || strstr(text, ":-") || strstr(text, "T-") || strstr(text, " -"))
        goto bad;
    int y = 0, mo = 0, d = 0, h = 0, mi = 0, s = 0, n = 0;
    size_t len = strlen(text);
    gboolean utc = len > 0 && (text[len - 1] == 'Z' || text[len - 1] == 'z');
    int got = sscanf(text, "%4d-%2d-%2d%n", &y, &mo, &d, &n);
    if (got != 3) goto bad;
    const char *p = text + n;
    if (*p == 'T' || *p == ' ') {
        int m2 = 0;
        int g2 = sscanf(p + 1, "%2d:%2d%n:%2d%n", &h, &mi, &m2, &s, &m2);
        if (g2 < 2) goto bad;
        p = p + 1 + m2;
        if (*p == '.') {
            int digits = 0;
            for (p++; g_ascii_isdigit(*p); p++, digits++)
                if (digits < 6)
                    usec = usec * 10 + (*p - '0');
            if (digits == 0) goto bad;
            for (; digits < 6; digits++)
                usec *= 10;
        }
    }
    if (*p == 'Z' || *p == 'z') p++;
    if (*p) goto bad;
    if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || s > 60) goto bad;
    struct tm tm = { .tm_year = y - 1900, .tm_mon = mo - 1, .tm_mday = d,
                     .tm_hour = h, .tm_min = mi, .tm_sec = s, .tm_isdst = -1 };
    struct tm want = tm;
    time_t t = utc ? timegm(&tm) : mktime(&tm);
    if (t == (time_t) -1) goto bad;
    /* normalisation moved a field: no such date (2026-02-31) */
    if (tm.tm_mday != want.tm_mday || tm.tm_mon != want.tm_mon || tm.tm_year != want.tm_year)
        goto bad;
    *ret_unix = t;
    *ret_usec = usec;
    return TRUE;
bad:
    g_set_error(error, CAIRN_UTIL_ERROR, CAIRN_UTIL_ERROR_PARSE,
                "invalid time '%s': expected YYYY-MM-DD[THH:MM[:SS]][Z]", text);
    return FALSE;
}

char *
cairn_format_time_utc(int64_t unix_seconds)
{
    time_t t = (time_t) unix_seconds;
    struct tm tm;
    char buf[32];
    gmtime_r(&t, &tm);
    strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return g_strdup(buf);
}

char *
cairn_format_time_utc_frac(int64_t unix_seconds, int32_t usec)
{
    g_autofree char *base = cairn_format_time_utc(unix_seconds);
    base[strlen(base) - 1] = '\0';
    return g_strdup_printf("%s.%06dZ", base, usec);
}

int64_t
cairn_now_us(void)
{
    const char *fake = g_getenv("CAIRN_FAKE_NOW");
    if (fake && *fake)
        return g_ascii_strtoll(fake, NULL, 10) * G_USEC_PER_SEC;
    return g_get_real_time();
}

char *
cairn_format_size(uint64_t bytes)
{
    static const char *const units[] = { "B", "KiB", "MiB", "GiB", "TiB", "PiB" };
    double v = (double) bytes;
    unsigned u = 0;
    while (v >= 1024.0 && u + 1 < G_N_ELEMENTS(units)) {
        v /= 1024.0;
        u++;
    }
    if (u == 0)
        return g_strdup_printf("%" G_GUINT64_FORMAT " B", bytes);
    return g_strdup_printf("%.1f %s", v, units[u]);
}

void
cairn_hex_encode(const uint8_t *bytes, size_t len, char *ret_hex)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < len; i++) {
        ret_hex[2 * i] = digits[bytes[i] >> 4];
        ret_hex[2 * i + 1] = digits[bytes[i] & 15];
    }
    ret_hex[2 * len] = '\0';
}

gboolean
cairn_hex_decode(const char *hex, uint8_t *ret_bytes, size_t len)
{
    if (strlen(hex) != 2 * len)
        return FALSE;
    for (size_t i = 0; i < len; i++) {
        int hi = g_ascii_xdigit_value(hex[2 * i]);
        int lo = g_ascii_xdigit_value(hex[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return FALSE;
        ret_bytes[i] = (uint8_t) (hi << 4 | lo);
    }
    return TRUE;
}

gboolean
cairn_is_hex(const char *text, size_t min_len, size_t max_len)
{
    size_t n = strlen(text);
    if (n < min_len || n > max_len)
        return FALSE;
    for (size_t i = 0; i < n; i++)
        if (!g_ascii_isxdigit(text[i]) || g_ascii_isupper(text[i]))
            return FALSE;
    return TRUE;
}

void
cairn_set_errno(GError **error, int errsv, const char *what, const char *subject)
{
    int code = (errsv == ENOSPC || errsv == EDQUOT) ? CAIRN_UTIL_ERROR_NOSPACE : CAIRN_UTIL_ERROR_IO;
    if (code == CAIRN_UTIL_ERROR_NOSPACE)
        g_set_error(error, CAIRN_UTIL_ERROR, code, "%s '%s': %s (free space on that filesystem and retry)",
                    what, subject, g_strerror(errsv));
    else
        g_set_error(error, CAIRN_UTIL_ERROR, code, "%s '%s': %s", what, subject, g_strerror(errsv));
}

gboolean
cairn_pwrite_all(int fd, const void *buf, size_t len, uint64_t offset, const char *path,
                 GError **error)
{
    const uint8_t *p = buf;
    while (len > 0) {
        ssize_t n = pwrite(fd, p, len, (off_t) offset);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            cairn_set_errno(error, errno, "cannot write", path);
            return FALSE;
        }
        p += n;
        len -= (size_t) n;
        offset += (uint64_t) n;
    }
    return TRUE;
}

gboolean
cairn_write_all(int fd, const void *buf, size_t len, const char *path, GError **error)
{
    const uint8_t *p = buf;
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            cairn_set_errno(error, errno, "cannot write", path);
            return FALSE;
        }
        p += n;
        len -= (size_t) n;
    }
    return TRUE;
}

gboolean
cairn_read_file(const char *path, uint8_t **ret_data, size_t *ret_len, GError **error)
{
    cairn_autofd fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        cairn_set_errno(error, errno, "cannot open", path);
        return FALSE;
    }
    struct stat st;
    if (fstat(fd, &st) < 0) {
        cairn_set_errno(error, errno, "cannot stat", path);
        return FALSE;
    }
    size_t cap = st.st_size > 0 ? (size_t) st.st_size : 4096, len = 0;
    g_autofree uint8_t *data = g_malloc(cap + 1);
    for (;;) {
        if (len == cap) {
            cap *= 2;
            data = g_realloc(data, cap + 1);
        }
        ssize_t n = read(fd, data + len, cap - len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            cairn_set_errno(error, errno, "cannot read", path);
            return FALSE;
        }
        if (n == 0)
            break;
        len += (size_t) n;
    }
    data[len] = 0;
    *ret_len = len;
    *ret_data = g_steal_pointer(&data);
    return TRUE;
}

gboolean
cairn_fsync_dir(const char *dir, GError **error)
{
    cairn_autofd fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        cairn_set_errno(error, errno, "cannot open directory", dir);
        return FALSE;
    }
    if (fsync(fd) < 0) {
        cairn_set_errno(error, errno, "cannot fsync directory", dir);
        return FALSE;
    }
    return TRUE;
}

gboolean
cairn_write_file_durable(const char *path, const void *data, size_t len, int mode, GError **error)
{
    g_autofree char *dir = g_path_get_dirname(path);
    g_autofree char *base = g_path_get_basename(path);
    g_autofree char *rnd = cairn_random_hex(8);
    g_autofree char *tmp = g_strdup_printf("%s/.tmp-%s-%s", dir, base, rnd);
    cairn_autofd fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
    if (fd < 0) {
        cairn_set_errno(error, errno, "cannot create", tmp);
        return FALSE;
    }
    if (!cairn_write_all(fd, data, len, tmp, error) ) {
        unlink(tmp);
        return FALSE;
    }
    if (fsync(fd) < 0) {
        cairn_set_errno(error, errno, "cannot fsync", tmp);
        unlink(tmp);
        return FALSE;
    }
    if (close(cairn_steal_fd(&fd)) < 0) {
        cairn_set_errno(error, errno, "cannot close", tmp);
        unlink(tmp);
        return FALSE;
    }
    if (rename(tmp, path) < 0) {
        cairn_set_errno(error, errno, "cannot rename into place", path);
        unlink(tmp);
        return FALSE;
    }
    return cairn_fsync_dir(dir, error);
}

gboolean
cairn_mkdir_p(const char *path, int mode, GError **error)
{
    if (g_mkdir_with_parents(path, mode) < 0) {
        cairn_set_errno(error, errno, "cannot create directory", path);
        return FALSE;
    }
    return TRUE;
}

bool
cairn_is_all_zero(const void *buf, size_t len)
{
    const uint8_t *p = buf;
    /* check the first 16 bytes, then compare the buffer with itself shifted */
    size_t head = len < 16 ? len : 16;
    for (size_t i = 0; i < head; i++)
        if (p[i])
            return false;
    return len <= 16 || memcmp(p, p + 16, len - 16) == 0;
}

char *
cairn_random_hex(size_t nbytes)
{
    uint8_t buf[64];
    g_assert(nbytes <= sizeof buf);
    if (RAND_bytes(buf, (int) nbytes) != 1)
        for (size_t i = 0; i < nbytes; i++)
            buf[i] = (uint8_t) g_random_int();
    char *hex = g_malloc(2 * nbytes + 1);
    cairn_hex_encode(buf, nbytes, hex);
    return hex;
}

int64_t
cairn_now(void)
{
    const char *fake = g_getenv("CAIRN_FAKE_NOW");
    if (fake && *fake)
        return g_ascii_strtoll(fake, NULL, 10);
    return (int64_t) time(NULL);
}

static volatile sig_atomic_t cancel_signal;

static void
on_cancel_signal(int sig)
{
    cancel_signal = sig;
}

void
cairn_cancel_on_signals(void)
{
    struct sigaction sa = { .sa_handler = on_cancel_signal }; /* no SA_RESTART */
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
}

int
cairn_cancelled(void)
{
    return cancel_signal;
}

void
cairn_set_cancelled(GError **error, const char *what)
{
    int sig = cancel_signal;
    g_set_error(error, CAIRN_UTIL_ERROR, CAIRN_UTIL_ERROR_CANCELLED, "%s: interrupted by SIG%s", what,
                sig == SIGINT ? "INT" : sig == SIGHUP ? "HUP" : "TERM");
}

static unsigned
edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > 64 || lb > 64)
        return 99;
    unsigned row[65];
    for (size_t j = 0; j <= lb; j++)
        row[j] = (unsigned) j;
    for (size_t i = 1; i <= la; i++) {
        unsigned prev = row[0];
        row[0] = (unsigned) i;
        for (size_t j = 1; j <= lb; j++) {
            unsigned cur = row[j];
            unsigned sub = prev + (a[i - 1] != b[j - 1]);
            unsigned best = MIN(row[j] + 1, row[j - 1] + 1);
            row[j] = MIN(best, sub);
            prev = cur;
        }
    }
    return row[lb];
}

const char *
cairn_closest(const char *word, const char *const *candidates)
{
    const char *best = NULL;
    unsigned best_d = 99;
    g_autofree char *lower = g_ascii_strdown(word, -1);
    for (size_t i = 0; candidates && candidates[i]; i++) {
        /* a difference of case alone is the closest miss there is */
        g_autofree char *cand = g_ascii_strdown(candidates[i], -1);
        unsigned d = strcmp(word, candidates[i]) && !strcmp(lower, cand)
                         ? 0 : edit_distance(word, candidates[i]);
        if (d < best_d) {
            best_d = d;
            best = candidates[i];
        }
    }
    size_t len = strlen(word);
    unsigned limit = len <= 3 ? 1 : len <= 6 ? 2 : 3;
    return best_d <= limit ? best : NULL;
}

int
cairn_key_file_line(const char *text, const char *word)
{
    int line = 1;
    size_t n = strlen(word);
    for (const char *p = text; *p; line++) {
        const char *q = p + strspn(p, " \t");
        if (!strncmp(q, word, n) && (q[n] == '\0' || strchr("= \t\r\n", q[n])))
            return line;
        const char *nl = strchr(p, '\n');
        if (!nl)
            break;
        p = nl + 1;
    }
    return 0;
}
