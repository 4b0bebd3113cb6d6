/* test-local.c - the local directory backend's batches (committed by the
 * put that fills one, outside the lock, while other threads write on) and
 * the write-behind that streams their files to the disk. */
#include "config.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/util.h"
#include "common/writeback.h"
#include "repo/backends/backend.h"

#define THREADS 4
#define PER_THREAD 2500 /* 5000 objects, each put twice: a full batch of 4096 committed by a writer, and a rest */

static char *
make_dir(void)
{
    char *dir = g_dir_make_tmp("cairn-test-local-XXXXXX", NULL);
    assert_non_null(dir);
    return dir;
}

static void
remove_tree(const char *dir)
{
    g_autofree char *cmd = g_strdup_printf("rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
}

static char *
object_key(guint thread, guint i)
{
    /* two threads write every key: put-if-absent must keep one */
    guint n = (thread / 2) * PER_THREAD + i;
    return g_strdup_printf("objects/%02x/obj-%05u", n % 256, n);
}

static char *
object_body(const char *key)
{
    return g_strdup_printf("body of %s", key);
}

typedef struct {
    CairnBackend *b;
    guint thread;
    guint created;
    gboolean ok;
} Writer;

static gpointer
writer(gpointer data)
{
    Writer *w = data;
    w->ok = TRUE;
    for (guint i = 0; i < PER_THREAD && w->ok; i++) {
        g_autofree char *key = object_key(w->thread, i);
        g_autofree char *body = object_body(key);
        gboolean created = FALSE;
        g_autoptr(GError) error = NULL;
        if (!cairn_backend_put(w->b, key, body, strlen(body), CAIRN_PUT_IF_ABSENT, &created,
                               &error)) {
            print_error("put %s: %s\n", key, error->message);
            w->ok = FALSE;
            break;
        }
        w->created += created;
        /* what was put is there at once, named or still in its batch */
        gboolean exists = FALSE;
        g_autoptr(GBytes) got = cairn_backend_get(w->b, key, &error);
        if (!cairn_backend_exists(w->b, key, &exists, &error) || !exists || !got ||
            g_bytes_get_size(got) != strlen(body) ||
            memcmp(g_bytes_get_data(got, NULL), body, strlen(body)) != 0) {
            print_error("%s is not readable right after its put\n", key);
            w->ok = FALSE;
        }
    }
    return NULL;
}

/* files under dir (recursively) whose name starts with prefix */
static guint
count_files(const char *dir, const char *prefix)
{
    g_autoptr(GDir) d = g_dir_open(dir, 0, NULL);
    assert_non_null(d);
    guint n = 0;
    const char *name;
    while ((name = g_dir_read_name(d))) {
        g_autofree char *path = g_build_filename(dir, name, NULL);
        if (g_file_test(path, G_FILE_TEST_IS_DIR))
            n += count_files(path, prefix);
        else if (g_str_has_prefix(name, prefix))
            n++;
    }
    return n;
}

static void
test_batches_from_threads(void **state)
{
    (void) state;
    g_autofree char *dir = make_dir();
    g_autoptr(GError) error = NULL;
    CairnBackend *b = cairn_backend_local_new(dir, FALSE, &error);
    assert_non_null(b);

    Writer w[THREADS];
    GThread *t[THREADS];
    for (guint i = 0; i < THREADS; i++) {
        w[i] = (Writer) { .b = b, .thread = i };
        t[i] = g_thread_new("writer", writer, &w[i]);
    }
    guint created = 0;
    for (guint i = 0; i < THREADS; i++) {
        g_thread_join(t[i]);
        assert_true(w[i].ok);
        created += w[i].created;
    }
    assert_int_equal(created, THREADS / 2 * PER_THREAD); /* each key created once */
    assert_true(cairn_backend_flush(b, &error));
    cairn_backend_free(b);

    /* after the flush every object has its name and no temp file is left */
    assert_int_equal(count_files(dir, ".tmp-"), 0);
    assert_int_equal(count_files(dir, "obj-"), THREADS / 2 * PER_THREAD);
    for (guint th = 0; th < THREADS; th += 2)
        for (guint i = 0; i < PER_THREAD; i++) {
            g_autofree char *key = object_key(th, i);
            g_autofree char *path = g_build_filename(dir, key, NULL);
            g_autofree char *want = object_body(key);
            g_autofree char *have = NULL;
            assert_true(g_file_get_contents(path, &have, NULL, NULL));
            assert_string_equal(have, want);
        }
    remove_tree(dir);
}

/* A batch whose temp file vanished cannot be committed: the flush says
 * which object, and a later flush does not pretend the batch is durable. */
static void
test_commit_failure_is_sticky(void **state)
{
    (void) state;
    g_autofree char *dir = make_dir();
    g_autoptr(GError) error = NULL;
    CairnBackend *b = cairn_backend_local_new(dir, FALSE, &error);
    assert_non_null(b);
    gboolean created;
    assert_true(cairn_backend_put(b, "objects/ab/abcd", "x", 1, CAIRN_PUT_IF_ABSENT, &created,
                                  &error));
    g_autofree char *cmd = g_strdup_printf("rm -f '%s'/objects/ab/.tmp-*", dir);
    assert_int_equal(system(cmd), 0);

    assert_false(cairn_backend_flush(b, &error));
    assert_non_null(strstr(error->message, "objects/ab/abcd"));
    g_clear_error(&error);
    assert_false(cairn_backend_flush(b, &error));
    assert_non_null(strstr(error->message, "objects/ab/abcd"));
    cairn_backend_free(b);
    g_autofree char *path = g_build_filename(dir, "objects/ab/abcd", NULL);
    assert_false(g_file_test(path, G_FILE_TEST_EXISTS));
    remove_tree(dir);
}

/* Is path open in this process? (fd numbers are reused: ask by name) */
static gboolean
is_open(const char *path)
{
    g_autoptr(GDir) d = g_dir_open("/proc/self/fd", 0, NULL);
    assert_non_null(d);
    const char *name;
    while ((name = g_dir_read_name(d))) {
        g_autofree char *link = g_strdup_printf("/proc/self/fd/%s", name);
        g_autofree char *target = g_file_read_link(link, NULL);
        if (target && strcmp(target, path) == 0)
            return TRUE;
    }
    return FALSE;
}

static char *
file_path(const char *dir, int i)
{
    return g_strdup_printf("%s/f%d", dir, i);
}

static void
test_writeback_window(void **state)
{
    (void) state;
    g_autofree char *dir = make_dir();
    g_autoptr(GError) error = NULL;
    g_autoptr(CairnWriteback) wb = cairn_writeback_new(64 * 1024);
    uint8_t block[16 * 1024];

    /* owned fds: closed once 64 KiB of newer writes follow them */
    for (int i = 0; i < 10; i++) {
        g_autofree char *path = file_path(dir, i);
        int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
        assert_true(fd >= 0);
        memset(block, 'a' + i, sizeof block);
        assert_true(cairn_write_all(fd, block, sizeof block, path, &error));
        assert_true(cairn_writeback_add(wb, fd, 0, sizeof block, TRUE, path, &error));
    }
    /* 160 KiB added, the newest 64 KiB (4 files) still queued */
    for (int i = 0; i < 10; i++) {
        g_autofree char *path = file_path(dir, i);
        assert_int_equal(is_open(path), i >= 6);
    }
    assert_true(cairn_writeback_drain(wb, &error));
    for (int i = 0; i < 10; i++) {
        g_autofree char *path = file_path(dir, i);
        assert_false(is_open(path));
    }

    /* ranges of a file the caller keeps: never closed by the writeback */
    g_autofree char *big = g_strdup_printf("%s/big", dir);
    int fd = open(big, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    assert_true(fd >= 0);
    for (int i = 0; i < 12; i++) {
        memset(block, 'A' + i, sizeof block);
        assert_true(cairn_pwrite_all(fd, block, sizeof block, (uint64_t) i * sizeof block, big,
                                     &error));
        assert_true(cairn_writeback_add(wb, fd, (uint64_t) i * sizeof block, sizeof block, FALSE,
                                        big, &error));
    }
    assert_true(cairn_writeback_drain(wb, &error));
    assert_true(is_open(big));
    assert_int_equal(close(fd), 0);

    /* the data is all there, whatever left the page cache */
    for (int i = 0; i < 10; i++) {
        g_autofree char *path = file_path(dir, i);
        g_autofree char *have = NULL;
        gsize len;
        assert_true(g_file_get_contents(path, &have, &len, NULL));
        assert_int_equal(len, sizeof block);
        assert_int_equal(have[0], 'a' + i);
        assert_int_equal(have[len - 1], 'a' + i);
    }
    g_autofree char *have = NULL;
    gsize len;
    assert_true(g_file_get_contents(big, &have, &len, NULL));
    assert_int_equal(len, 12 * sizeof block);
    for (int i = 0; i < 12; i++)
        assert_int_equal(have[i * sizeof block + 7], 'A' + i);
    remove_tree(dir);
}

/* Small files: the window counts files too, not only bytes. */
static void
test_writeback_many_small(void **state)
{
    (void) state;
    g_autofree char *dir = make_dir();
    g_autoptr(GError) error = NULL;
    g_autoptr(CairnWriteback) wb = cairn_writeback_new(CAIRN_WRITEBACK_WINDOW);
    for (int i = 0; i < 3 * CAIRN_WRITEBACK_MAX_RANGES; i++) {
        g_autofree char *path = file_path(dir, i);
        int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
        assert_true(fd >= 0);
        assert_true(cairn_write_all(fd, "tiny", 4, path, &error));
        assert_true(cairn_writeback_add(wb, fd, 0, 4, TRUE, path, &error));
    }
    guint open_files = 0;
    for (int i = 0; i < 3 * CAIRN_WRITEBACK_MAX_RANGES; i++) {
        g_autofree char *path = file_path(dir, i);
        open_files += is_open(path);
    }
    assert_int_equal(open_files, CAIRN_WRITEBACK_MAX_RANGES);
    assert_true(cairn_writeback_drain(wb, &error));
    remove_tree(dir);
}

/* Freed with ranges queued (an error path): owned fds are closed. */
static void
test_writeback_free_closes(void **state)
{
    (void) state;
    g_autofree char *dir = make_dir();
    g_autoptr(GError) error = NULL;
    CairnWriteback *wb = cairn_writeback_new(1u << 20);
    g_autofree char *path = g_strdup_printf("%s/f", dir);
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    assert_true(fd >= 0);
    assert_true(cairn_write_all(fd, "data", 4, path, &error));
    assert_true(cairn_writeback_add(wb, fd, 0, 4, TRUE, path, &error));
    assert_true(is_open(path));
    cairn_writeback_free(wb);
    assert_false(is_open(path));
    cairn_writeback_free(NULL);
    remove_tree(dir);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_batches_from_threads),
        cmocka_unit_test(test_commit_failure_is_sticky),
        cmocka_unit_test(test_writeback_window),
        cmocka_unit_test(test_writeback_many_small),
        cmocka_unit_test(test_writeback_free_closes),
    };
    return cmocka_run_group_tests_name("local", tests, NULL, NULL);
}
