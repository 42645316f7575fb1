/*
 * guard.c -- the guard: outside its write transactions a write handle's
 * mappings refuse stores, so a stray store faults at once instead of
 * joining the next commit (DESIGN §3 "Guard").
 *
 * Layer 2: calls only os.c. It decides, at open, which guard a handle
 * gets, owns the handle's protection key and every change of a thread's
 * rights to it. It must never map, unmap or write store data: map.c maps
 * and calls back here to tag, txn.c and view.c say when rights change.
 *
 * NOTES ON THE DESIGN
 *
 * Two guards, chosen per handle at open, before the first mapping:
 *
 *   key       (MMS_GUARD_KIND_PKEY) where the CPU has protection keys
 *             (x86 `pku`) and the process has one to spare (15 at most).
 *             The writer's view is mapped read-write and tagged with the
 *             handle's key once per mapping (map.c calls guard_tag); a
 *             thread's PKRU register says whether it may write pages of
 *             that key. A transaction costs two register writes, however
 *             large the store.
 *   mprotect  (MMS_GUARD_KIND_MPROTECT) everywhere else: the view is
 *             mapped read-only outside write transactions and every
 *             mapping is mprotect()ed at each begin and end (map.c
 *             mms__map_protect), ~0.5 ms a call on our machines.
 *
 * Which one (guard_flags, then guard_open):
 *   - MMS_NOGUARD, MMS_GUARD=0 in the environment, or MMS_RDONLY: none.
 *   - MMS_GUARD_MPROTECT or MMS_GUARD=mprotect: mprotect, even with keys.
 *   - MMS_GUARD, MMS_GUARD=1, or a debug build: a key if one is to be
 *     had, else mprotect.
 *   - Otherwise (release builds by default): a key if one is to be had,
 *     else none -- so without `pku` the defaults are what they were.
 * The environment wins over the flags (the tests force the guard on).
 * A key per handle, not per process: two handles of one thread are
 * guarded apart (a transaction on one does not open the other), and a
 * process that runs out of keys still gets a correct guard, only a slower
 * one, or none by default.
 *
 * Rights are per thread (PKRU is a register). The rules:
 *
 *   G1. Write rights to a handle's key are given by mms__map_protect(s,
 *       true) and taken by mms__map_protect(s, false), in the calling
 *       thread: txn_begin gives them, txn_end takes them; the library's
 *       own writes outside a write transaction (view.c's replay into the
 *       view) are bracketed the same way, in the thread that makes them.
 *   G2. Calls on the handle give the calling thread rights and never take
 *       any away (the call may be inside a G1 bracket): every call that
 *       checks the handle (mms__check_handle) and mms_info_get give read
 *       rights; inside a write transaction, the calls that need it
 *       (mms__check_write: allocation, tables, indexes ...) and
 *       mms_txn_commit / mms_txn_abort give write rights too. So a
 *       transaction begun on one thread may go on, commit or abort on
 *       another (mmstore.h allows it): the library's writes at commit
 *       (diff, trim, held pages, the index, the header) and at abort
 *       (shadows put back) run with rights in that thread. A thread that
 *       only looks (mms_info_get, a read) gets no write rights, even
 *       during another thread's transaction. The thread that began keeps
 *       write rights until it next begins and ends a transaction on the
 *       handle: moving a transaction between threads weakens the guard
 *       for the first one.
 *   G3. Linux gives a thread that existed before the key was allocated,
 *       and every signal handler, no access to it at all (its initial
 *       PKRU): such a thread reads the handle's data only after a call on
 *       the handle (G2). pkey_alloc gives the opening thread read rights;
 *       a thread inherits its creator's register, so one created inside a
 *       write transaction may write too.
 *   G4. mprotect keeps a mapping's key and a new mapping over a range has
 *       key 0, so map.c tags every mapping of the writer's view it makes
 *       (regions, growth, the private remap after a commit, following
 *       other writers' commits). The file view (fview) and read-only
 *       handles are not guarded: nobody stores there by mistake through a
 *       pointer the library gave out.
 *   G5. The key is freed at close after every mapping is gone, so the
 *       kernel cannot give it to pages still tagged with it.
 */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

MMS__OPEN_PATH
unsigned mms__guard_flags(unsigned flags)
{
    const char *g = getenv("MMS_GUARD");
#ifndef NDEBUG
    if (!(flags & MMS_NOGUARD))
        flags |= MMS_GUARD;
#endif
    if (flags & MMS_GUARD_MPROTECT)
        flags |= MMS_GUARD;
    if (flags & MMS_NOGUARD)
        flags &= ~(MMS_GUARD | MMS_GUARD_MPROTECT);
    if (g && *g == '1')
        flags = (flags & ~(MMS_NOGUARD | MMS_GUARD_MPROTECT)) | MMS_GUARD;
    if (g && *g == '0')
        flags = (flags & ~(MMS_GUARD | MMS_GUARD_MPROTECT)) | MMS_NOGUARD;
    if (g && strcmp(g, "mprotect") == 0)
        flags = (flags & ~MMS_NOGUARD) | MMS_GUARD | MMS_GUARD_MPROTECT;
    if (flags & MMS_RDONLY) /* read-only mappings refuse stores anyway */
        flags = (flags & ~(MMS_GUARD | MMS_GUARD_MPROTECT)) | MMS_NOGUARD;
    return flags;
}

MMS__OPEN_PATH
void mms__guard_open(mms_store *s)
{
    s->guard_key = 0;
    if (s->flags & MMS_NOGUARD)
        return;
    if (!(s->flags & MMS_GUARD_MPROTECT)) {
        /* G3: the opening thread may read, not write. */
        int k = mms__os_pkey_alloc(MMS__PKEY_NOWRITE);
        if (k > 0) {
            s->guard_key = k;
            s->flags |= MMS_GUARD;
            return;
        }
    }
    /* No key: mprotect if the guard was asked for, else none (MMS_GUARD
     * stays as guard_flags left it). */
}

void mms__guard_close(mms_store *s)
{
    if (!s->guard_key)
        return;
    /* G5: the mappings are gone. This thread's rights to the number go
     * back to what Linux starts a thread with (none), so a later owner of
     * the number is not open to it (pkey_alloc sets only its caller's). */
    mms__os_pkey_set(s->guard_key, MMS__PKEY_NOACCESS | MMS__PKEY_NOWRITE);
    mms__os_pkey_free(s->guard_key);
    s->guard_key = 0;
}

unsigned mms__guard_kind(const mms_store *s)
{
    if (s->guard_key)
        return MMS_GUARD_KIND_PKEY;
    return (s->flags & MMS_GUARD) ? MMS_GUARD_KIND_MPROTECT : MMS_GUARD_KIND_NONE;
}

int mms__guard_tag(const mms_store *s, void *addr, uint64_t len)
{
    return s->guard_key ? mms__os_pkey_tag(addr, len, s->guard_key) : 0;
}

void mms__guard_rights(const mms_store *s, bool writable)
{
    /* G1 */
    if (s->guard_key)
        mms__os_pkey_set(s->guard_key, writable ? 0 : MMS__PKEY_NOWRITE);
}

MMS__OPEN_PATH
void mms__guard_enter(const mms_store *s, bool write)
{
    /* G2: only ever more rights, so a call inside a G1 bracket keeps it. */
    if (!s->guard_key)
        return;
    unsigned have = mms__os_pkey_get(s->guard_key);
    unsigned want = have;
    if (write && s->state == MMS__ST_WRITE)
        want = 0;
    else if (have & MMS__PKEY_NOACCESS)
        want = MMS__PKEY_NOWRITE;
    if (want != have)
        mms__os_pkey_set(s->guard_key, want);
}
