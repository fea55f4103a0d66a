/* Loopback hub server for the download tests (see test_hub_server.h). */
#include "test_hub_server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

#define HS_DEADLINE_S 120      /* the server ends by itself after this long */
#define HS_IO_TIMEOUT_MS 5000  /* per read/write on a connection */
#define HS_LFS_MIN (1u << 20)

/* ---- hashing ------------------------------------------------------------------- */

static int hash_file(const char *path, const EVP_MD *md, const char *prefix, size_t prefix_len, char *out) {
    FILE *f = fopen(path, "rb");
    if (!f) return -1;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    int ok = ctx && EVP_DigestInit_ex(ctx, md, NULL) && (!prefix_len || EVP_DigestUpdate(ctx, prefix, prefix_len));
    unsigned char buf[1 << 16];
    size_t n;
    while (ok && (n = fread(buf, 1, sizeof buf, f)) > 0) ok = EVP_DigestUpdate(ctx, buf, n);
    unsigned char dig[EVP_MAX_MD_SIZE];
    unsigned int dn = 0;
    ok = ok && !ferror(f) && EVP_DigestFinal_ex(ctx, dig, &dn);
    EVP_MD_CTX_free(ctx);
    fclose(f);
    if (!ok) return -1;
    for (unsigned int i = 0; i < dn; i++) sprintf(out + 2 * i, "%02x", dig[i]);
    return 0;
}

int hs_sha256_file(const char *path, char out[65]) { return hash_file(path, EVP_sha256(), NULL, 0, out); }

int hs_git_sha1_file(const char *path, char out[41]) {
    struct stat st;
    if (stat(path, &st) != 0) return -1;
    char head[48];
    int n = snprintf(head, sizeof head, "blob %lld", (long long)st.st_size);
    return hash_file(path, EVP_sha1(), head, (size_t)n + 1, out);
}

/* ---- connection I/O ---------------------------------------------------------------- */

static int send_all(int fd, const void *data, size_t n) {
    const char *p = data;
    while (n) {
        struct pollfd pfd = {fd, POLLOUT, 0};
        if (poll(&pfd, 1, HS_IO_TIMEOUT_MS) <= 0) return -1;
        ssize_t k = send(fd, p, n, MSG_NOSIGNAL);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) return -1;
        p += k;
        n -= (size_t)k;
    }
    return 0;
}

/* Reads the request head (up to the blank line) into buf; -1 on timeout or overflow. */
static int read_head(int fd, char *buf, size_t cap) {
    size_t used = 0;
    while (used + 1 < cap) {
        struct pollfd pfd = {fd, POLLIN, 0};
        if (poll(&pfd, 1, HS_IO_TIMEOUT_MS) <= 0) return -1;
        ssize_t k = recv(fd, buf + used, cap - 1 - used, 0);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) return -1;
        used += (size_t)k;
        buf[used] = 0;
        if (strstr(buf, "\r\n\r\n")) return 0;
    }
    return -1;
}

/* Value of header name in a request head, copied to out ("" if absent). */
static void header_value(const char *head, const char *name, char *out, size_t n) {
    out[0] = 0;
    size_t nl = strlen(name);
    for (const char *line = strstr(head, "\r\n"); line && line[2]; line = strstr(line + 2, "\r\n")) {
        const char *l = line + 2;
        if (!strncasecmp(l, name, nl) && l[nl] == ':') {
            const char *v = l + nl + 1;
            while (*v == ' ') v++;
            const char *end = strstr(v, "\r\n");
            size_t len = end ? (size_t)(end - v) : strlen(v);
            if (len >= n) len = n - 1;
            memcpy(out, v, len);
            out[len] = 0;
            return;
        }
    }
}

static void url_decode(char *s) {
    char *w = s;
    for (char *r = s; *r; r++) {
        if (r[0] == '%' && r[1] && r[2]) {
            char hex[3] = {r[1], r[2], 0};
            *w++ = (char)strtol(hex, NULL, 16);
            r += 2;
        } else {
            *w++ = *r;
        }
    }
    *w = 0;
}

/* ---- responses ------------------------------------------------------------------- */

static int send_status(int fd, int status, const char *reason, const char *extra_headers) {
    char buf[2048];
    int n = snprintf(buf, sizeof buf,
                     "HTTP/1.1 %d %s\r\nContent-Length: 0\r\nConnection: close\r\n%s\r\n", status, reason,
                     extra_headers ? extra_headers : "");
    return send_all(fd, buf, (size_t)n);
}

static int send_error(int fd, int status, const char *code, const char *message) {
    char extra[512];
    snprintf(extra, sizeof extra, "X-Error-Code: %s\r\nX-Error-Message: %s\r\n", code, message);
    return send_status(fd, status, status == 404 ? "Not Found" : status == 401 ? "Unauthorized" : "Error", extra);
}

/* Sends the bytes of path from offset `from`, honouring the drop / corrupt switches
 * captured by the caller. headers: status line and headers already formatted. */
static int send_body(int fd, const char *path, uint64_t from, uint64_t size, int64_t drop_after, int corrupt) {
    int in = open(path, O_RDONLY);
    if (in < 0) return -1;
    char buf[1 << 16];
    uint64_t pos = from, sent = 0, flip_at = size / 2;
    int rc = 0;
    while (pos < size) {
        size_t want = sizeof buf;
        if (want > size - pos) want = (size_t)(size - pos);
        if (drop_after >= 0 && sent + want > (uint64_t)drop_after) want = (size_t)((uint64_t)drop_after - sent);
        if (want == 0) { rc = -1; break; }   /* the switch: cut the connection here */
        ssize_t k = pread(in, buf, want, (off_t)pos);
        if (k <= 0) { rc = -1; break; }
        if (corrupt && flip_at >= pos && flip_at < pos + (uint64_t)k) buf[flip_at - pos] ^= 0x5a;
        if (send_all(fd, buf, (size_t)k) != 0) { rc = -1; break; }
        pos += (uint64_t)k;
        sent += (uint64_t)k;
    }
    close(in);
    return rc;
}

static int is_lfs(const char *file, uint64_t size) {
    size_t n = strlen(file);
    return size > HS_LFS_MIN || (n > 12 && !strcmp(file + n - 12, ".safetensors"));
}

/* Splits "/{org}/{name}/{kind}/..." into repo "org/name" and the rest after kind. */
static int split_repo_path(const char *path, char *repo, size_t rn, const char **rest) {
    if (path[0] != '/') return -1;
    const char *a = strchr(path + 1, '/');
    if (!a) return -1;
    const char *b = strchr(a + 1, '/');
    if (!b || (size_t)(b - path - 1) >= rn) return -1;
    memcpy(repo, path + 1, (size_t)(b - path - 1));
    repo[b - path - 1] = 0;
    *rest = b + 1;
    return 0;
}

static void handle(hub_server *s, int fd) {
    char head[8192];
    if (read_head(fd, head, sizeof head) != 0) return;
    hs_request r;
    memset(&r, 0, sizeof r);
    char auth[256], path[600];
    if (sscanf(head, "%7s %599s", r.method, path) != 2) return;
    header_value(head, "Range", r.range, sizeof r.range);
    header_value(head, "Authorization", auth, sizeof auth);
    r.has_auth = auth[0] != 0;
    snprintf(r.path, sizeof r.path, "%s", path);
    url_decode(path);
    int is_head = !strcmp(r.method, "HEAD");

    /* what to do, decided under the lock; the transfer happens outside it */
    char file_path[2048] = "", extra[1024] = "";
    int status = 0;
    uint64_t size = 0, from = 0;
    int64_t drop_after = -1;
    int corrupt = 0;
    hs_lock(s);
    char repo[256];
    const char *rest = NULL;
    int ri = -1;
    if (!strncmp(path, "/cdn/", 5)) {
        /* path + 4 is "/{org}/{name}/{file}" */
        if (split_repo_path(path + 4, repo, sizeof repo, &rest) == 0)
            for (int i = 0; i < s->n_repos; i++) if (!strcmp(s->repos[i].repo, repo)) ri = i;
        struct stat st;
        if (ri < 0 || strstr(rest, "..") ||
            snprintf(file_path, sizeof file_path, "%s/%s", s->repos[ri].dir, rest) >= (int)sizeof file_path ||
            stat(file_path, &st) != 0) {
            status = 404;
        } else {
            status = 200;
            size = (uint64_t)st.st_size;
            unsigned long long rf;
            if (!s->ignore_range && r.range[0] && sscanf(r.range, "bytes=%llu-", &rf) == 1 && rf < size) {
                status = 206;
                from = rf;
            }
            if (!strcmp(rest, s->corrupt_file)) corrupt = 1;
            if (!strcmp(rest, s->drop_file) && s->drop_count > 0 && !is_head) {
                s->drop_count--;
                drop_after = (int64_t)s->drop_after;
            }
            if (status == 206)
                snprintf(extra, sizeof extra, "Content-Range: bytes %llu-%llu/%llu\r\n", (unsigned long long)from,
                         (unsigned long long)size - 1, (unsigned long long)size);
        }
    } else if (split_repo_path(path, repo, sizeof repo, &rest) == 0 && !strncmp(rest, "resolve/", 8)) {
        for (int i = 0; i < s->n_repos; i++) if (!strcmp(s->repos[i].repo, repo)) ri = i;
        const char *rev = rest + 8, *slash = strchr(rev, '/');
        const char *file = slash ? slash + 1 : "";
        char bearer[200];
        if (ri >= 0) snprintf(bearer, sizeof bearer, "Bearer %s", s->repos[ri].token);
        struct stat st;
        if (!strcmp(repo, s->renamed_from)) {
            status = 307;
            snprintf(extra, sizeof extra, "Location: /%s/%s\r\n", s->renamed_to, rest);
        } else if (ri < 0) {
            status = 404;
        } else if (s->repos[ri].token[0] && strcmp(auth, bearer)) {
            status = 401;
        } else if (!slash || (strncmp(rev, "main/", 5) && strncmp(rev, s->commit, 40))) {
            status = 404;
            snprintf(extra, sizeof extra, "RevisionNotFound");
        } else if (strstr(file, "..") ||
                   snprintf(file_path, sizeof file_path, "%s/%s", s->repos[ri].dir, file) >= (int)sizeof file_path ||
                   stat(file_path, &st) != 0) {
            status = 404;
            snprintf(extra, sizeof extra, "EntryNotFound");
        } else {
            size = (uint64_t)st.st_size;
            char hash[65];
            if (is_lfs(file, size)) {
                status = 302;
                if (hs_sha256_file(file_path, hash) != 0) status = 500;
                snprintf(extra, sizeof extra,
                         "Location: %s/cdn/%s/%s\r\nX-Repo-Commit: %s\r\nX-Linked-Etag: \"%s\"\r\nX-Linked-Size: %llu\r\n"
                         "ETag: W/\"redirect-%s\"\r\n", s->endpoint, repo, file, s->commit, hash,
                         (unsigned long long)size, s->commit);
            } else {
                status = 200;
                if (hs_git_sha1_file(file_path, hash) != 0) status = 500;
                snprintf(extra, sizeof extra, "X-Repo-Commit: %s\r\nETag: \"%s\"\r\n", s->commit, hash);
                unsigned long long rf;
                if (!s->ignore_range && r.range[0] && sscanf(r.range, "bytes=%llu-", &rf) == 1 && rf < size) {
                    status = 206;
                    from = rf;
                    size_t u = strlen(extra);
                    snprintf(extra + u, sizeof extra - u, "Content-Range: bytes %llu-%llu/%llu\r\n", rf,
                             (unsigned long long)size - 1, (unsigned long long)size);
                }
                if (!strcmp(file, s->corrupt_file)) corrupt = 1;
                if (!strcmp(file, s->drop_file) && s->drop_count > 0 && !is_head) {
                    s->drop_count--;
                    drop_after = (int64_t)s->drop_after;
                }
            }
        }
    } else {
        status = 404;
    }
    r.status = status;
    if (s->n_log < HS_MAX_LOG) s->log[s->n_log++] = r;
    char commit[41];
    memcpy(commit, s->commit, sizeof commit);
    hs_unlock(s);

    if (status == 307) { send_status(fd, 307, "Temporary Redirect", extra); return; }
    if (status == 404 && ri < 0) { send_error(fd, 404, "RepoNotFound", "Repository not found"); return; }
    if (status == 404 && !strcmp(extra, "RevisionNotFound")) { send_error(fd, 404, extra, "Invalid rev id"); return; }
    if (status == 404 && !strcmp(extra, "EntryNotFound")) {
        /* the hub names the commit even when the file is absent */
        char h[512];
        snprintf(h, sizeof h, "X-Error-Code: EntryNotFound\r\nX-Error-Message: Entry not found\r\nX-Repo-Commit: %s\r\n",
                 commit);
        send_status(fd, 404, "Not Found", h);
        return;
    }
    if (status == 404) { send_status(fd, 404, "Not Found", NULL); return; }
    if (status == 401) { send_error(fd, 401, "RepoNotFound", "Invalid credentials in Authorization header"); return; }
    if (status == 500) { send_status(fd, 500, "Internal Server Error", NULL); return; }
    if (status == 302) { send_status(fd, 302, "Found", extra); return; }
    char hdr[2048];
    int n = snprintf(hdr, sizeof hdr,
                     "HTTP/1.1 %d %s\r\nContent-Length: %llu\r\nAccept-Ranges: bytes\r\nConnection: close\r\n%s\r\n",
                     status, status == 206 ? "Partial Content" : "OK", (unsigned long long)(size - from), extra);
    if (send_all(fd, hdr, (size_t)n) != 0 || is_head) return;
    send_body(fd, file_path, from, size, drop_after, corrupt);
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void *serve(void *arg) {
    hub_server *s = arg;
    double deadline = now_s() + HS_DEADLINE_S;
    for (;;) {
        hs_lock(s);
        int stop = s->stop;
        hs_unlock(s);
        if (stop || now_s() > deadline) break;
        struct pollfd pfd = {s->listen_fd, POLLIN, 0};
        if (poll(&pfd, 1, 50) <= 0) continue;
        int fd = accept(s->listen_fd, NULL, NULL);
        if (fd < 0) continue;
        handle(s, fd);
        shutdown(fd, SHUT_RDWR);
        close(fd);
    }
    return NULL;
}

int hs_start(hub_server *s) {
    s->listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (s->listen_fd < 0) return -1;
    struct sockaddr_in addr;
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;   /* ephemeral */
    socklen_t len = sizeof addr;
    if (bind(s->listen_fd, (struct sockaddr *)&addr, sizeof addr) != 0 || listen(s->listen_fd, 16) != 0 ||
        getsockname(s->listen_fd, (struct sockaddr *)&addr, &len) != 0) {
        close(s->listen_fd);
        return -1;
    }
    s->port = ntohs(addr.sin_port);
    snprintf(s->endpoint, sizeof s->endpoint, "http://127.0.0.1:%d", s->port);
    s->stop = 0;
    pthread_mutex_init(&s->mu, NULL);
    if (pthread_create(&s->thread, NULL, serve, s) != 0) {
        close(s->listen_fd);
        pthread_mutex_destroy(&s->mu);
        return -1;
    }
    return 0;
}

void hs_stop(hub_server *s) {
    hs_lock(s);
    s->stop = 1;
    hs_unlock(s);
    pthread_join(s->thread, NULL);
    close(s->listen_fd);
    pthread_mutex_destroy(&s->mu);
}

void hs_lock(hub_server *s) { pthread_mutex_lock(&s->mu); }
void hs_unlock(hub_server *s) { pthread_mutex_unlock(&s->mu); }

void hs_add_repo(hub_server *s, const char *repo, const char *dir, const char *token) {
    if (s->n_repos >= HS_MAX_REPOS) return;
    snprintf(s->repos[s->n_repos].repo, sizeof s->repos[0].repo, "%s", repo);
    snprintf(s->repos[s->n_repos].dir, sizeof s->repos[0].dir, "%s", dir);
    snprintf(s->repos[s->n_repos].token, sizeof s->repos[0].token, "%s", token ? token : "");
    s->n_repos++;
}

void hs_clear_log(hub_server *s) {
    hs_lock(s);
    s->n_log = 0;
    hs_unlock(s);
}

static int ends_with(const char *s, const char *suffix) {
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && !strcmp(s + a - b, suffix);
}

int hs_count(hub_server *s, const char *method, const char *path_suffix) {
    int n = 0;
    hs_lock(s);
    for (int i = 0; i < s->n_log; i++)
        if (!strcmp(s->log[i].method, method) && ends_with(s->log[i].path, path_suffix)) n++;
    hs_unlock(s);
    return n;
}

void hs_last_range(hub_server *s, const char *method, const char *path_suffix, char *out, size_t n) {
    out[0] = 0;
    hs_lock(s);
    for (int i = 0; i < s->n_log; i++)
        if (!strcmp(s->log[i].method, method) && ends_with(s->log[i].path, path_suffix))
            snprintf(out, n, "%s", s->log[i].range);
    hs_unlock(s);
}
