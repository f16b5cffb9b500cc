// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Coroutines on glibc's ucontext (the contract is in qemu/coroutine.h).
 *
 * makecontext/setcontext start a coroutine on its own stack once; every
 * later switch is a sigsetjmp/siglongjmp pair, which, unlike swapcontext,
 * does not save and restore the signal mask with two system calls (and
 * which AddressSanitizer follows, where it warns about swapcontext).  A
 * coroutine's stack runs a loop: when its function returns, the coroutine
 * goes back to its pool and a later qemu_coroutine_create() reuses the
 * stack and the loop runs the next function.
 *
 * Under AddressSanitizer every switch is announced (start/finish of a
 * fiber switch): ASan keeps shadow state per stack and would otherwise
 * take a jump to another stack for stack corruption.  Under
 * ThreadSanitizer each coroutine is a fiber of its own, and every switch
 * says which fiber runs next, just before the jump: TSan keeps a shadow
 * call stack and a vector clock per thread of execution, and without the
 * fibers it would unwind a stack that is not the one running and blame
 * one coroutine's accesses on another's frames.  Switching with
 * synchronisation (flags 0) orders a coroutine's accesses before those of
 * whoever runs after it on the thread, which is what happens.
 */

#include <errno.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <ucontext.h>
#include <unistd.h>
#include <glib.h>
#include "qemu/coroutine.h"

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/common_interface_defs.h>
#define CO_ASAN 1
#else
#define CO_ASAN 0
#endif

#if defined(__SANITIZE_THREAD__)
#include <sanitizer/tsan_interface.h>
#define CO_TSAN 1
#else
#define CO_TSAN 0
#endif

#define CO_STACK_SIZE   (1024 * 1024)
/* Free coroutines kept per thread for reuse; more are unmapped. */
#define CO_POOL_MAX     64

enum {
    CO_ENTER = 1,       /* siglongjmp values */
    CO_YIELD,
    CO_TERMINATE,
};

struct Coroutine {
    CoroutineEntry *entry;
    void *opaque;
    Coroutine *caller;          /* who entered it; NULL when not running */
    bool scheduled;             /* woken, waiting to be entered */
    sigjmp_buf env;
    void *stack;                /* the mapping: guard page, then the stack */
    size_t stack_size;
    /* AddressSanitizer's bookkeeping of this stack */
    void *asan_fake_stack;
    const void *asan_bottom;
    size_t asan_size;
    /* ThreadSanitizer's fiber for this coroutine (the thread's own for the leader) */
    void *tsan_fiber;
};

/* The thread itself, as the caller of its outermost coroutines. */
static __thread Coroutine leader;
static __thread Coroutine *current;
static __thread GQueue pool = G_QUEUE_INIT;
/*
 * Woken coroutines, entered from the main context in wake order.  A wake
 * always comes from the thread whose list it is, so the thread's context
 * needs no wake-up signal: a source that lives as long as the context
 * finds the list non-empty when the context next prepares (rather than an
 * idle source attached for each batch, whose attaching signals the
 * context's eventfd: two system calls per batch).
 */
typedef struct WakeSource {
    GSource source;
    GMainContext *ctx;      /* attached to (the context holds the source) */
} WakeSource;

static __thread GQueue wake_list = G_QUEUE_INIT;
static __thread WakeSource *wake_source;    /* a reference of ours too */

/* At thread exit: our reference (the context may still hold the source). */
static void wake_source_release(gpointer p)
{
    g_source_unref(p);
}

static GPrivate wake_source_ref = G_PRIVATE_INIT(wake_source_release);
/* The coroutine being started, for the trampoline (makecontext passes ints only). */
static __thread Coroutine *starting;
static __thread sigjmp_buf *start_return;
/* The creator's ThreadSanitizer fiber, for the trampoline's jump back. */
static __thread void *start_fiber;
#if CO_ASAN
/* The creator's fake stack while a new coroutine's stack is set up. */
static __thread void *creator_fake_stack;
#endif

static void asan_start_switch(Coroutine *from, Coroutine *to, bool terminating)
{
#if CO_ASAN
    __sanitizer_start_switch_fiber(terminating ? NULL : &from->asan_fake_stack,
                                   to->asan_bottom, to->asan_size);
#else
    (void)from; (void)to; (void)terminating;
#endif
}

/* Landed on @self's stack, coming from @from (whose stack ASan now tells us). */
static void asan_finish_switch(Coroutine *self, Coroutine *from)
{
#if CO_ASAN
    const void *bottom;
    size_t size;

    __sanitizer_finish_switch_fiber(self->asan_fake_stack, &bottom, &size);
    if (from == &leader) {
        /* The thread's own stack is known only once it has been left. */
        leader.asan_bottom = bottom;
        leader.asan_size = size;
    }
#else
    (void)self; (void)from;
#endif
}

/* Just before the jump to @to's stack: its fiber is what runs from now on. */
static void tsan_switch(Coroutine *to)
{
#if CO_TSAN
    __tsan_switch_to_fiber(to->tsan_fiber, 0);
#else
    (void)to;
#endif
}

/* The fiber of whatever runs now, for a jump back to it. */
static void *tsan_current(void)
{
#if CO_TSAN
    return __tsan_get_current_fiber();
#else
    return NULL;
#endif
}

/* Saves @from's place and continues @to with @action; returns when @from is continued. */
static int co_switch(Coroutine *from, Coroutine *to, int action)
{
    int ret;

    current = to;
    ret = sigsetjmp(from->env, 0);
    if (ret == 0) {
        asan_start_switch(from, to, action == CO_TERMINATE);
        tsan_switch(to);
        siglongjmp(to->env, action);
    }
    return ret;
}

static void G_GNUC_NORETURN co_trampoline(void)
{
    Coroutine *self = starting;
    void *creator_fiber = start_fiber;
#if CO_ASAN
    const void *creator_bottom;
    size_t creator_size;

    __sanitizer_finish_switch_fiber(NULL, &creator_bottom, &creator_size);
#endif

    /* First arrival: save this place and go straight back to the creator. */
    if (!sigsetjmp(self->env, 0)) {
#if CO_ASAN
        __sanitizer_start_switch_fiber(&self->asan_fake_stack, creator_bottom, creator_size);
#endif
#if CO_TSAN
        __tsan_switch_to_fiber(creator_fiber, 0);
#else
        (void)creator_fiber;
#endif
        siglongjmp(*start_return, 1);
    }
    for (;;) {
        Coroutine *caller = self->caller;

        asan_finish_switch(self, caller);
        self->entry(self->opaque);
        /* Ended: back to the caller, which gives this coroutine to the pool. */
        self->entry = NULL;
        caller = self->caller;
        self->caller = NULL;
        co_switch(self, caller, CO_TERMINATE);
    }
}

static Coroutine *co_new(void)
{
    long page = sysconf(_SC_PAGESIZE);
    Coroutine *co = g_new0(Coroutine, 1);
    ucontext_t uc;
    sigjmp_buf back;

    co->stack_size = CO_STACK_SIZE + page;
    co->stack = mmap(NULL, co->stack_size, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (co->stack == MAP_FAILED) {
        fprintf(stderr, "coroutine: cannot map a stack: %s\n", strerror(errno));
        abort();
    }
    /* A stack overflow hits the guard page instead of someone else's memory. */
    if (mprotect(co->stack, page, PROT_NONE) < 0) {
        fprintf(stderr, "coroutine: cannot protect a guard page: %s\n", strerror(errno));
        abort();
    }
    co->asan_bottom = (char *)co->stack + page;
    co->asan_size = CO_STACK_SIZE;

    if (getcontext(&uc) < 0) {
        abort();
    }
    uc.uc_link = NULL;
    uc.uc_stack.ss_sp = (char *)co->stack + page;
    uc.uc_stack.ss_size = CO_STACK_SIZE;
    uc.uc_stack.ss_flags = 0;
    makecontext(&uc, co_trampoline, 0);

#if CO_TSAN
    co->tsan_fiber = __tsan_create_fiber(0);
#endif

    starting = co;
    start_return = &back;
    start_fiber = tsan_current();
    if (!sigsetjmp(back, 0)) {
#if CO_ASAN
        __sanitizer_start_switch_fiber(&creator_fake_stack, co->asan_bottom, co->asan_size);
#endif
        tsan_switch(co);
        /* setcontext, not swapcontext: the trampoline comes back by siglongjmp. */
        setcontext(&uc);
        abort();
    }
#if CO_ASAN
    __sanitizer_finish_switch_fiber(creator_fake_stack, NULL, NULL);
#endif
    starting = NULL;
    start_return = NULL;
    start_fiber = NULL;
    return co;
}

static void co_free(Coroutine *co)
{
#if CO_TSAN
    __tsan_destroy_fiber(co->tsan_fiber);
#endif
    munmap(co->stack, co->stack_size);
    g_free(co);
}

Coroutine *qemu_coroutine_create(CoroutineEntry *entry, void *opaque)
{
    Coroutine *co = g_queue_pop_head(&pool);

    if (!co) {
        co = co_new();
    }
    co->entry = entry;
    co->opaque = opaque;
    co->caller = NULL;
    co->scheduled = false;
    return co;
}

void qemu_coroutine_enter(Coroutine *co)
{
    Coroutine *self = current ? current : &leader;
    int ret;

    if (co->caller || co == self || !co->entry) {
        fprintf(stderr, "coroutine: entering a coroutine that is running or has ended\n");
        abort();
    }
    co->caller = self;
    if (self == &leader) {
        /* The thread's own fiber, to come back to (known only on the thread). */
        leader.tsan_fiber = tsan_current();
    }
    ret = co_switch(self, co, CO_ENTER);
    asan_finish_switch(self, co);
    current = self == &leader ? NULL : self;
    if (ret == CO_TERMINATE) {
        if (g_queue_get_length(&pool) < CO_POOL_MAX) {
            g_queue_push_head(&pool, co);
        } else {
            co_free(co);
        }
    }
}

void qemu_coroutine_yield(void)
{
    Coroutine *self = current;
    Coroutine *to;

    if (!self) {
        fprintf(stderr, "coroutine: yield outside a coroutine\n");
        abort();
    }
    to = self->caller;
    self->caller = NULL;
    co_switch(self, to, CO_YIELD);
    asan_finish_switch(self, self->caller);
}

Coroutine *qemu_coroutine_self(void)
{
    return current;
}

bool qemu_in_coroutine(void)
{
    return current != NULL;
}

static gboolean wake_prepare(GSource *source, gint *timeout)
{
    *timeout = -1;
    return !g_queue_is_empty(&wake_list);
}

static gboolean wake_check(GSource *source)
{
    return !g_queue_is_empty(&wake_list);
}

static gboolean wake_dispatch(GSource *source, GSourceFunc cb, gpointer data)
{
    GQueue batch = G_QUEUE_INIT;
    Coroutine *co;

    /* Those woken while these run wait for the next dispatch. */
    batch = wake_list;
    g_queue_init(&wake_list);
    while ((co = g_queue_pop_head(&batch))) {
        co->scheduled = false;
        qemu_coroutine_enter(co);
    }
    return G_SOURCE_CONTINUE;
}

static GSourceFuncs wake_funcs = {
    .prepare = wake_prepare,
    .check = wake_check,
    .dispatch = wake_dispatch,
};

void qemu_coroutine_wake(Coroutine *co)
{
    GMainContext *ctx = g_main_context_get_thread_default();

    /* The running coroutine may wake itself just before it yields. */
    if (co->scheduled || (co->caller && co != current)) {
        fprintf(stderr, "coroutine: waking a coroutine that is running or already woken\n");
        abort();
    }
    co->scheduled = true;
    g_queue_push_tail(&wake_list, co);
    if (!ctx) {
        ctx = g_main_context_default();
    }
    if (!wake_source || wake_source->ctx != ctx ||
        g_source_is_destroyed(&wake_source->source)) {
        /*
         * First wake on this thread, in a context pushed since (an
         * iothread's, once), or after the context went: the old source
         * stays with its context, if any, and goes when the context does.
         */
        wake_source = (WakeSource *)g_source_new(&wake_funcs, sizeof(WakeSource));
        wake_source->ctx = ctx;
        g_source_set_priority(&wake_source->source, G_PRIORITY_HIGH);
        /*
         * A nested loop run while a batch is entered dispatches the wakes
         * made meanwhile, as it would a new idle source's.
         */
        g_source_set_can_recurse(&wake_source->source, TRUE);
        g_source_attach(&wake_source->source, ctx);
        /* Drops the reference to the one before, if any. */
        g_private_replace(&wake_source_ref, wake_source);
    }
}

void qemu_coroutine_poll_until(const bool *done)
{
    g_autoptr(GMainContext) ctx = g_main_context_ref_thread_default();

    if (current) {
        fprintf(stderr, "coroutine: polling from inside a coroutine\n");
        abort();
    }
    while (!*done) {
        g_main_context_iteration(ctx, TRUE);
    }
}

typedef struct CoRunState {
    CoroutineEntry *entry;
    void *opaque;
    bool done;
} CoRunState;

static void co_run_entry(void *opaque)
{
    CoRunState *s = opaque;

    s->entry(s->opaque);
    s->done = true;
}

void qemu_coroutine_run(CoroutineEntry *entry, void *opaque)
{
    CoRunState s = { entry, opaque, false };

    if (current) {
        entry(opaque);
        return;
    }
    qemu_coroutine_enter(qemu_coroutine_create(co_run_entry, &s));
    qemu_coroutine_poll_until(&s.done);
}
