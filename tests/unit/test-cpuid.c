/* SPDX-License-Identifier: GPL-3.0-or-later */

#include <glib.h>

#include "vr-cpuid.h"
#include "vr-machine.h"

static struct kvm_cpuid2 *
make_base (void)
{
  struct kvm_cpuid2 *c = g_malloc0 (sizeof *c + 8 * sizeof (struct kvm_cpuid_entry2));

  /* A host shaped like this build machine's: leaf 0xb with only sub-leaf 0. */
  c->entries[c->nent++] = (struct kvm_cpuid_entry2) { .function = 0, .eax = 0x20 };
  c->entries[c->nent++] = (struct kvm_cpuid_entry2) {
    .function = 1, .ebx = 0x01020800, .ecx = 0x81a02000 | (1u << 21) | (1u << 24),
    .edx = 0x0f8bfbff };
  c->entries[c->nent++] = (struct kvm_cpuid_entry2) {
    .function = 4, .index = 0, .flags = KVM_CPUID_FLAG_SIGNIFCANT_INDEX, .eax = 0x04000121 };
  c->entries[c->nent++] = (struct kvm_cpuid_entry2) {
    .function = 0xb, .index = 0, .flags = KVM_CPUID_FLAG_SIGNIFCANT_INDEX, .edx = 1 };
  c->entries[c->nent++] = (struct kvm_cpuid_entry2) {
    .function = 0x40000001, .eax = (1u << 3) | (1u << 11) | (1u << 13) };
  return c;
}

static const struct kvm_cpuid_entry2 *
find (const struct kvm_cpuid2 *c, uint32_t function, uint32_t index)
{
  for (uint32_t i = 0; i < c->nent; i++)
    if (c->entries[i].function == function && c->entries[i].index == index)
      return &c->entries[i];
  return NULL;
}

static void
test_topology (void)
{
  g_autofree struct kvm_cpuid2 *base = make_base ();

  for (unsigned ncpus = 1; ncpus <= 64; ncpus *= 4)
    for (unsigned i = 0; i < ncpus; i += (ncpus > 2 ? ncpus - 1 : 1))
      {
        g_autofree struct kvm_cpuid2 *c = vr_cpuid_for_vcpu (base, i, ncpus);
        const struct kvm_cpuid_entry2 *l1 = find (c, 1, 0), *smt = find (c, 0xb, 0);
        const struct kvm_cpuid_entry2 *core = find (c, 0xb, 1), *end = find (c, 0xb, 2);

        /* The APIC id everywhere; one package: id >> core shift is 0 for every vCPU. */
        g_assert_cmpuint (l1->ebx >> 24, ==, i);
        g_assert_cmpuint ((l1->ebx >> 16) & 0xff, ==, ncpus);
        g_assert_true (l1->ecx & (1u << 31));  /* hypervisor */
        g_assert_nonnull (smt);
        g_assert_nonnull (core);
        g_assert_nonnull (end);
        g_assert_cmpuint (smt->edx, ==, i);
        g_assert_cmpuint ((smt->ecx >> 8) & 0xff, ==, 1);
        g_assert_cmpuint ((core->ecx >> 8) & 0xff, ==, 2);
        g_assert_cmpuint (core->ebx, ==, ncpus);
        g_assert_cmpuint (i >> core->eax, ==, 0);
        g_assert_cmpuint ((end->ecx >> 8) & 0xff, ==, 0);
        g_assert_cmpuint ((find (c, 4, 0)->eax >> 26) + 1, ==, ncpus);
      }
}

static void
test_mask (void)
{
  g_autofree struct kvm_cpuid2 *c = make_base ();
  g_autoptr (GError) error = NULL;
  g_auto (GStrv) names = vr_cpuid_feature_names ();

  g_assert_true (vr_cpuid_apply_mask (c, "x2apic, tsc-deadline,kvm-pv-ipi", &error));
  g_assert_no_error (error);
  g_assert_false (find (c, 1, 0)->ecx & (1u << 21));
  g_assert_false (find (c, 1, 0)->ecx & (1u << 24));
  g_assert_cmphex (find (c, 0x40000001, 0)->eax, ==, (1u << 3) | (1u << 13));

  g_assert_true (vr_cpuid_apply_mask (c, "", NULL));
  g_assert_true (vr_cpuid_apply_mask (c, NULL, NULL));
  g_assert_false (vr_cpuid_apply_mask (c, "x2apic,bogus", &error));
  g_assert_error (error, VR_ERROR, VR_ERROR_INVALID_CONFIG);
  g_assert_true (g_strv_contains ((const char *const *) names, "kvm-pv-ipi"));
  g_assert_true (g_strv_contains ((const char *const *) names, "pdpe1gb"));
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/cpuid/topology", test_topology);
  g_test_add_func ("/cpuid/mask", test_mask);
  return g_test_run ();
}
