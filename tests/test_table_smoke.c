/* Tables end to end: create, append, refs, strings, delete and reuse,
 * append_many, reopen, migrate with a default, read-only mismatch. */
#include "test.h"
struct person { int64_t id; char tag[8]; double score; mms_ref name; mms_ref boss; };
static const mms_field pf[] = { MMS_F_I64(struct person, id), MMS_F_CHARS(struct person, tag), MMS_F_F64(struct person, score), MMS_F_STR(struct person, name), MMS_F_REF(struct person, boss, "person") };
static const mms_schema ps = MMS_SCHEMA(struct person, pf);
struct person2 { int64_t id; char tag[16]; double score; mms_ref name; mms_ref boss; int32_t age; };
static const int32_t adult = 18;
static const mms_field pf2[] = { MMS_F_I64(struct person2, id), MMS_F_CHARS(struct person2, tag), MMS_F_F64(struct person2, score), MMS_F_STR(struct person2, name), MMS_F_REF(struct person2, boss, "person"), MMS_F_WITH_DEFAULT(struct person2, age, MMS_KIND_I32, &adult) };
static const mms_schema ps2 = MMS_SCHEMA(struct person2, pf2);
int main(void) {
  const char *p = tpath("smoke");
  mms_store *s = open_flags(p, MMS_CREATE);
  mms_table *t;
  OK(mms_txn_begin(s, 0));
  OK(mms_table_open(s, "person", &ps, MMS_TABLE_CREATE, &t));
  for (int i = 0; i < 1000; i++) {
    struct person x = { .id = i, .score = i * 0.5 };
    snprintf(x.tag, sizeof x.tag, "t%d", i % 100);
    OK(mms_str_new(s, "name", 4, &x.name));
    x.boss = i ? mms_table_ref(t, (uint64_t)(i / 2)) : 0;
    uint64_t idx; OK(mms_table_append(t, &x, &idx)); ASSERT_EQ(idx, i);
  }
  OK(mms_txn_commit(s));
  verify_ok(s);
  ASSERT_EQ(mms_table_count(t), 1000);
  OK(mms_txn_begin(s, 0));
  OK(mms_table_delete(t, 999)); OK(mms_table_delete(t, 997));
  uint64_t first; void *w;
  OK(mms_table_append_many(t, 100000, &first, &w));
  ASSERT_EQ(first, 1000);
  struct person *arr = w; for (int i = 0; i < 100000; i++) arr[i].id = 1000 + i;
  OK(mms_txn_commit(s));
  verify_ok(s);
  ASSERT_EQ(mms_table_count(t), 100998);
  ASSERT(!mms_table_live(t, 997));
  OK(mms_close(s));
  s = open_flags(p, 0);
  OK(mms_table_open(s, "person", &ps, 0, &t));
  ASSERT_EQ(mms_table_count(t), 100998);
  struct person *r = mms_table_get(t, 10); ASSERT_EQ(r->id, 10);
  ASSERT_EQ(MMS_REC(s, struct person, r->boss)->id, 5);
  size_t len; ASSERT(strcmp(mms_str_get(s, r->name, &len), "name") == 0);
  verify_ok(s);
  /* migrate */
  FAILS(mms_table_open(s, "person", &ps2, 0, &t), MMS_ENOTXN);
  OK(mms_txn_begin(s, 0));
  OK(mms_table_open(s, "person", &ps2, 0, &t));
  struct person2 *q = mms_table_get(t, 10);
  ASSERT_EQ(q->id, 10); ASSERT_EQ(q->age, 18); ASSERT(strcmp(q->tag, "t10") == 0);
  ASSERT_EQ(MMS_REC(s, struct person2, q->boss)->id, 5);
  OK(mms_txn_commit(s));
  verify_ok(s);
  uint64_t idx; OK(mms_txn_begin(s, 0)); OK(mms_table_append(t, NULL, &idx)); ASSERT_EQ(idx, 997); OK(mms_txn_abort(s));
  OK(mms_close(s));
  s = open_flags(p, MMS_RDONLY);
  FAILS(mms_table_open(s, "person", &ps, 0, &t), MMS_ESCHEMA);
  OK(mms_table_open(s, "person", &ps2, 0, &t));
  ASSERT_EQ(((struct person2 *)mms_table_get(t, 99999))->id, 99999);
  ASSERT_EQ(((struct person2 *)mms_table_get(t, 99999))->age, 18);
  verify_ok(s);
  OK(mms_close(s));
  rmrf(p);
  printf("smoke ok\n");
  return 0;
}
