/* The volume registry: lookup, growth, iteration, placeholders and references. */
#include <check.h>
#include <stdio.h>
#include <string.h>

#include "harness.h"
#include "registry.h"

START_TEST(get_find_release)
{
	struct registry reg;
	struct volume *v;

	ck_assert_int_eq(registry_init(&reg), 0);
	ck_assert_ptr_null(registry_find(&reg, "a"));
	v = registry_get(&reg, "a");
	ck_assert_ptr_nonnull(v);
	ck_assert(!v->exists);
	ck_assert_ptr_eq(registry_get(&reg, "a"), v);
	ck_assert_ptr_eq(registry_find(&reg, "a"), v);
	registry_release(&reg, v);
	ck_assert_ptr_null(registry_find(&reg, "a"));
	registry_destroy(&reg);
}
END_TEST

START_TEST(release_keeps_existing_busy_or_mounted)
{
	struct registry reg;
	struct volume *v;
	json_t *opts = json_pack("{s:s}", "source", "h:/e");

	registry_init(&reg);
	v = registry_get(&reg, "kept");
	volume_set_options(v, opts, NULL, NULL);
	registry_release(&reg, v);
	ck_assert_ptr_eq(registry_find(&reg, "kept"), v);
	volume_forget_options(v);
	v->mounted = true;
	registry_release(&reg, v);
	ck_assert_ptr_eq(registry_find(&reg, "kept"), v);
	v->mounted = false;
	v->busy = true;
	registry_release(&reg, v);
	ck_assert_ptr_eq(registry_find(&reg, "kept"), v);
	v->busy = false;
	registry_release(&reg, v);
	ck_assert_ptr_null(registry_find(&reg, "kept"));
	json_decref(opts);
	registry_destroy(&reg);
}
END_TEST

START_TEST(grows_and_iterates_every_volume_once)
{
	struct registry reg;
	char name[32];
	int seen = 0;

	registry_init(&reg);
	for (int i = 0; i < 5000; i++) {
		snprintf(name, sizeof(name), "vol-%d", i);
		ck_assert_ptr_nonnull(registry_get(&reg, name));
	}
	ck_assert_uint_eq(reg.n_volumes, 5000);
	ck_assert_uint_ge(reg.n_buckets, 4096);
	for (struct volume *v = registry_first(&reg); v; v = registry_next(&reg, v))
		seen++;
	ck_assert_int_eq(seen, 5000);
	for (int i = 0; i < 5000; i += 7) {
		snprintf(name, sizeof(name), "vol-%d", i);
		ck_assert_str_eq(registry_find(&reg, name)->name, name);
	}
	registry_destroy(&reg);
}
END_TEST

START_TEST(references_by_id_and_count)
{
	struct registry reg;
	struct volume *v;

	registry_init(&reg);
	v = registry_get(&reg, "r");
	ck_assert_int_eq(volume_add_ref(v, "id1"), 0);
	ck_assert_int_eq(volume_add_ref(v, "id1"), 0); /* the same ID twice holds once */
	ck_assert_int_eq(volume_add_ref(v, "id2"), 0);
	ck_assert_int_eq(volume_add_ref(v, NULL), 0);
	ck_assert_int_eq(volume_add_ref(v, NULL), 0);
	ck_assert_uint_eq(volume_refs(v), 4);
	ck_assert(volume_has_id(v, "id2"));
	ck_assert_int_eq(volume_drop_ref(v, "id1"), 0);
	ck_assert_int_eq(volume_drop_ref(v, "id1"), -1);
	ck_assert_int_eq(volume_drop_ref(v, "nope"), -1);
	ck_assert_int_eq(volume_drop_ref(v, NULL), 0);
	ck_assert_uint_eq(volume_refs(v), 2);
	volume_clear_refs(v);
	ck_assert_uint_eq(volume_refs(v), 0);
	ck_assert_int_eq(volume_drop_ref(v, NULL), -1);
	registry_destroy(&reg);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("registry");
	TCase *tc = tcase_create("registry");

	tcase_add_test(tc, get_find_release);
	tcase_add_test(tc, release_keeps_existing_busy_or_mounted);
	tcase_add_test(tc, grows_and_iterates_every_volume_once);
	tcase_add_test(tc, references_by_id_and_count);
	suite_add_tcase(s, tc);
	return harness_run(s);
}
