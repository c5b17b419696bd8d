/* tests/kqueue_shim/sys/event.h - the part of BSD's kqueue API that microweb's kqueue
   backend uses, emulated over epoll, so that backend runs the end-to-end suites on Linux.

   Built with -U__linux__ -D__OpenBSD__ -Itests/kqueue_shim, microweb.h takes its kqueue
   branch (and its non-Linux accept path) and includes this file as <sys/event.h>.
   Semantics kept from kqueue(2): one filter per (fd, direction), each with its own udata;
   EV_ADD adds or modifies, EV_DELETE removes (ENOENT when absent), EV_ONESHOT removes the
   filter once it fires; an event is one filter; closing an fd drops its filters. Only
   EVFILT_READ and EVFILT_WRITE exist, flags other than those three are refused, and
   filter data (bytes readable, EV_EOF) is not reported: microweb reads none of it.

   An fd with a filter armed is registered in epoll one-shot, so one waiting thread
   takes its readiness; the waiter hands out the filters that fired and re-registers what
   stays armed. close() is the shim's own (a macro below): it forgets the fd's filters
   and closes it under the lock the waiters hold, so no waiter touches a descriptor
   while another thread closes it, as with kqueue, where the close drops the filters in
   the kernel. An fd closed some other way is found out when EPOLL_CTL_MOD of a reused
   number fails with ENOENT, and its old filters are forgotten then. */
#ifndef MW_KQUEUE_SHIM_H
#define MW_KQUEUE_SHIM_H

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

/* FreeBSD's count of the bytes in a socket's send buffer (a lingering close reads it):
   Linux calls it TIOCOUTQ */
#include <sys/ioctl.h>
#ifndef FIONWRITE
#define FIONWRITE TIOCOUTQ
#endif

#define EVFILT_READ (-1)
#define EVFILT_WRITE (-2)
#define EV_ADD 0x0001
#define EV_DELETE 0x0002
#define EV_ONESHOT 0x0010

struct kevent {
    uintptr_t ident;
    short filter;
    unsigned short flags;
    unsigned int fflags;
    intptr_t data;
    void *udata;
};

#define EV_SET(kevp, a, b, c, d, e, f)            \
    do {                                          \
        struct kevent *kq_shim_ev_ = (kevp);      \
        kq_shim_ev_->ident = (uintptr_t)(a);      \
        kq_shim_ev_->filter = (short)(b);         \
        kq_shim_ev_->flags = (unsigned short)(c); \
        kq_shim_ev_->fflags = (unsigned int)(d);  \
        kq_shim_ev_->data = (intptr_t)(e);        \
        kq_shim_ev_->udata = (f);                 \
    } while (0)

#define KQ_SHIM_MAX_FD 65536

typedef struct kq_shim_filter {
    int armed, oneshot;
    void *udata;
} kq_shim_filter;

typedef struct kq_shim_fd {
    kq_shim_filter dir[2]; /* 0: EVFILT_READ, 1: EVFILT_WRITE */
    int registered;        /* known to epoll (possibly disarmed by EPOLLONESHOT) */
} kq_shim_fd;

/* Keyed by fd: a descriptor number is unique in the process and belongs to one kqueue,
   so one table serves every kqueue the process opens. */
static pthread_mutex_t kq_shim_lock = PTHREAD_MUTEX_INITIALIZER;
static kq_shim_fd kq_shim_fds[KQ_SHIM_MAX_FD];

static int kqueue(void) { return epoll_create1(EPOLL_CLOEXEC); }

/* Registers with epoll what is armed on fd (under kq_shim_lock). An fd with nothing
   armed leaves epoll altogether: epoll reports hang-ups even on an empty event mask,
   and kqueue reports nothing for an fd without filters. */
static int kq_shim_sync(int kq, int fd) {
    kq_shim_fd *s = &kq_shim_fds[fd];
    struct epoll_event e;
    memset(&e, 0, sizeof e);
    e.events = (s->dir[0].armed ? (uint32_t)EPOLLIN : 0u) | (s->dir[1].armed ? (uint32_t)EPOLLOUT : 0u);
    e.data.fd = fd;
    if (!e.events) {
        if (s->registered && epoll_ctl(kq, EPOLL_CTL_DEL, fd, &e) != 0 && errno != ENOENT && errno != EBADF) return -1;
        s->registered = 0;
        return 0;
    }
    e.events |= (uint32_t)EPOLLONESHOT;
    if (s->registered) {
        if (epoll_ctl(kq, EPOLL_CTL_MOD, fd, &e) == 0) return 0;
        if (errno != ENOENT) return -1;
        s->registered = 0; /* the fd was closed: a new file has the number */
        return -2;
    }
    if (epoll_ctl(kq, EPOLL_CTL_ADD, fd, &e) != 0) return -1;
    s->registered = 1;
    return 0;
}

static int kq_shim_change(int kq, const struct kevent *ch) {
    int fd = (int)ch->ident, d = ch->filter == EVFILT_WRITE ? 1 : 0, rc;
    kq_shim_fd *s;
    if (fd < 0 || fd >= KQ_SHIM_MAX_FD || (ch->filter != EVFILT_READ && ch->filter != EVFILT_WRITE) ||
        (ch->flags & ~(EV_ADD | EV_DELETE | EV_ONESHOT))) {
        errno = EINVAL;
        return -1;
    }
    s = &kq_shim_fds[fd];
    if (s->registered && kq_shim_sync(kq, fd) == -2) memset(s->dir, 0, sizeof s->dir); /* stale filters */
    if (ch->flags & EV_DELETE) {
        if (!s->dir[d].armed) {
            errno = ENOENT;
            return -1;
        }
        s->dir[d].armed = 0;
    } else if (ch->flags & EV_ADD) {
        s->dir[d].armed = 1;
        s->dir[d].oneshot = (ch->flags & EV_ONESHOT) != 0;
        s->dir[d].udata = ch->udata;
    }
    rc = kq_shim_sync(kq, fd);
    if (rc == -2) rc = kq_shim_sync(kq, fd); /* registered again as the new file */
    if (rc != 0) {
        /* leave nothing behind that could fire with a stale udata */
        epoll_ctl(kq, EPOLL_CTL_DEL, fd, NULL);
        memset(s->dir, 0, sizeof s->dir);
        s->registered = 0;
        return -1;
    }
    return 0;
}

/* Turns one epoll readiness into kevents (at most room of them); returns how many. */
static int kq_shim_fire(int kq, const struct epoll_event *e, struct kevent *out, int room) {
    kq_shim_fd *s = &kq_shim_fds[e->data.fd];
    uint32_t ready[2] = {EPOLLIN | EPOLLHUP | EPOLLERR, EPOLLOUT | EPOLLHUP | EPOLLERR};
    short filter[2] = {EVFILT_READ, EVFILT_WRITE};
    int d, n = 0;
    for (d = 0; d < 2 && n < room; d++) {
        if (!s->dir[d].armed || !(e->events & ready[d])) continue;
        EV_SET(&out[n], e->data.fd, filter[d], 0, 0, 0, s->dir[d].udata);
        n++;
        if (s->dir[d].oneshot) s->dir[d].armed = 0;
    }
    kq_shim_sync(kq, e->data.fd); /* what is still armed waits again */
    return n;
}

static int kevent(int kq, const struct kevent *changes, int nchanges, struct kevent *events, int nevents,
                  const struct timespec *timeout) {
    struct epoll_event ev[64];
    int i, n, got = 0;
    pthread_mutex_lock(&kq_shim_lock);
    for (i = 0; i < nchanges; i++) {
        if (kq_shim_change(kq, &changes[i]) != 0) {
            pthread_mutex_unlock(&kq_shim_lock);
            return -1;
        }
    }
    pthread_mutex_unlock(&kq_shim_lock);
    if (nevents <= 0) return 0;
    if (nevents > 64) nevents = 64;
    n = epoll_wait(kq, ev, nevents, timeout ? (int)(timeout->tv_sec * 1000 + timeout->tv_nsec / 1000000) : -1);
    if (n < 0) return -1;
    pthread_mutex_lock(&kq_shim_lock);
    for (i = 0; i < n; i++) got += kq_shim_fire(kq, &ev[i], events + got, nevents - got);
    pthread_mutex_unlock(&kq_shim_lock);
    return got;
}

/* close(2) with kqueue's effect on filters: see the top of this file. */
static int kq_shim_close(int fd) {
    int rc;
    pthread_mutex_lock(&kq_shim_lock);
    if (fd >= 0 && fd < KQ_SHIM_MAX_FD) memset(&kq_shim_fds[fd], 0, sizeof kq_shim_fds[fd]);
    rc = close(fd);
    pthread_mutex_unlock(&kq_shim_lock);
    return rc;
}
#define close(fd) kq_shim_close(fd)

#endif
