/*
 * guard_kind -- which guard a write handle gets in this environment, as the
 * tests get theirs (MMS_GUARD=1 from the caller): it creates a store at
 * DIR, prints "QEMU-GUARD <kind>" (pkey, mprotect or none) and exits 0 if
 * the kind is pkey. Built and run by tests/pkey_qemu.sh only, so that its
 * passes are known to be the key guard's (public API only). It also prints
 * "QEMU-DIRTY <backend>" (scan: the PAGEMAP_SCAN ioctl, Linux >= 6.7, or
 * pagemap) and "QEMU-WP <0|1>" (mms_info.held_protected, after a commit
 * that left a page held: 1 when userfaultfd write-protects held pages),
 * so that a run says which dirty-page path ran under the key.
 *
 *     guard_kind DIR
 */
#include <mmstore.h>

#include <stdio.h>

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: guard_kind DIR\n");
        return 2;
    }
    mms_options o;
    mms_options_init(&o);
    o.flags = MMS_CREATE;
    mms_store *s = NULL;
    mms_info in;
    mms_ref ref = 0;
    /* One commit that writes, so that the handle has a held page and has
     * decided whether it write-protects them. */
    int r = mms_open(argv[1], &o, &s);
    if (!r)
        r = mms_txn_begin(s, 0);
    if (!r)
        r = mms_alloc(s, 64, &ref);
    if (!r) {
        *(char *)mms_ptr(s, ref) = 1;
        r = mms_txn_commit(s);
    }
    if (!r)
        r = mms_info_get(s, &in);
    if (r) {
        fprintf(stderr, "guard_kind: %s (%s)\n", mms_strerror(r), mms_errdetail());
        return 1;
    }
    const char *name = in.guard_kind == MMS_GUARD_KIND_PKEY       ? "pkey"
                       : in.guard_kind == MMS_GUARD_KIND_MPROTECT ? "mprotect"
                                                                  : "none";
    printf("QEMU-GUARD %s\n", name);
    printf("QEMU-DIRTY %s\n", in.dirty_backend == MMS_DIRTY_SCAN      ? "scan"
                               : in.dirty_backend == MMS_DIRTY_PAGEMAP ? "pagemap"
                                                                       : "auto");
    printf("QEMU-WP %d\n", in.held_protected);
    mms_close(s);
    return in.guard_kind == MMS_GUARD_KIND_PKEY ? 0 : 1;
}
