/* SPDX-License-Identifier: GPL-3.0-or-later */

#include "vr-cpuid.h"

#include <errno.h>
#include <string.h>
#include <sys/ioctl.h>

#include "vr-machine.h"

enum { EAX, EBX, ECX, EDX };

typedef struct
{
  const char *name;
  uint32_t    function;
  uint32_t    index;
  uint8_t     reg;
  uint8_t     bit;
} VrCpuidFeature;

/* Features a user may hide from the guest. Leaf 7 sub-leaf 0 unless stated. */
static const VrCpuidFeature features[] = {
  { "sse3",         1, 0, ECX,  0 },
  { "pclmulqdq",    1, 0, ECX,  1 },
  { "monitor",      1, 0, ECX,  3 },
  { "vmx",          1, 0, ECX,  5 },
  { "ssse3",        1, 0, ECX,  9 },
  { "fma",          1, 0, ECX, 12 },
  { "cx16",         1, 0, ECX, 13 },
  { "pcid",         1, 0, ECX, 17 },
  { "sse4.1",       1, 0, ECX, 19 },
  { "sse4.2",       1, 0, ECX, 20 },
  { "x2apic",       1, 0, ECX, 21 },
  { "movbe",        1, 0, ECX, 22 },
  { "popcnt",       1, 0, ECX, 23 },
  { "tsc-deadline", 1, 0, ECX, 24 },
  { "aes",          1, 0, ECX, 25 },
  { "xsave",        1, 0, ECX, 26 },
  { "avx",          1, 0, ECX, 28 },
  { "f16c",         1, 0, ECX, 29 },
  { "rdrand",       1, 0, ECX, 30 },
  { "hypervisor",   1, 0, ECX, 31 },
  { "mtrr",         1, 0, EDX, 12 },
  { "pat",          1, 0, EDX, 16 },
  { "fsgsbase",     7, 0, EBX,  0 },
  { "bmi1",         7, 0, EBX,  3 },
  { "hle",          7, 0, EBX,  4 },
  { "avx2",         7, 0, EBX,  5 },
  { "smep",         7, 0, EBX,  7 },
  { "bmi2",         7, 0, EBX,  8 },
  { "erms",         7, 0, EBX,  9 },
  { "invpcid",      7, 0, EBX, 10 },
  { "rtm",          7, 0, EBX, 11 },
  { "avx512f",      7, 0, EBX, 16 },
  { "rdseed",       7, 0, EBX, 18 },
  { "adx",          7, 0, EBX, 19 },
  { "smap",         7, 0, EBX, 20 },
  { "clflushopt",   7, 0, EBX, 23 },
  { "sha",          7, 0, EBX, 29 },
  { "umip",         7, 0, ECX,  2 },
  { "pku",          7, 0, ECX,  3 },
  { "waitpkg",      7, 0, ECX,  5 },
  { "la57",         7, 0, ECX, 16 },
  { "rdpid",        7, 0, ECX, 22 },
  { "syscall",      0x80000001, 0, EDX, 11 },
  { "nx",           0x80000001, 0, EDX, 20 },
  { "pdpe1gb",      0x80000001, 0, EDX, 26 },
  { "rdtscp",       0x80000001, 0, EDX, 27 },
  { "lahf-lm",      0x80000001, 0, ECX,  0 },
  { "abm",          0x80000001, 0, ECX,  5 },
  { "kvmclock",     0x40000001, 0, EAX,  3 },  /* KVM_FEATURE_CLOCKSOURCE2 */
  { "kvm-pv-eoi",   0x40000001, 0, EAX,  6 },
  { "kvm-pv-unhalt", 0x40000001, 0, EAX, 7 },
  { "kvm-steal-time", 0x40000001, 0, EAX, 5 },
  { "kvm-async-pf", 0x40000001, 0, EAX,  4 },
  { "kvm-pv-tlb-flush", 0x40000001, 0, EAX, 9 },
  { "kvm-pv-ipi",   0x40000001, 0, EAX, 11 },  /* IPIs by hypercall */
  { "kvm-poll-control", 0x40000001, 0, EAX, 12 },
  { "kvm-pv-sched-yield", 0x40000001, 0, EAX, 13 },  /* yield by hypercall */
  { "kvm-msi-ext-dest-id", 0x40000001, 0, EAX, 15 },
};

char **
vr_cpuid_feature_names (void)
{
  GStrvBuilder *builder = g_strv_builder_new ();
  char **names;

  for (gsize i = 0; i < G_N_ELEMENTS (features); i++)
    g_strv_builder_add (builder, features[i].name);
  names = g_strv_builder_end (builder);
  g_strv_builder_unref (builder);
  return names;
}

static struct kvm_cpuid_entry2 *
find_entry (struct kvm_cpuid2 *cpuid,
            uint32_t           function,
            uint32_t           index)
{
  for (uint32_t i = 0; i < cpuid->nent; i++)
    {
      struct kvm_cpuid_entry2 *e = &cpuid->entries[i];

      if (e->function != function)
        continue;
      if ((e->flags & KVM_CPUID_FLAG_SIGNIFCANT_INDEX) && e->index != index)
        continue;
      return e;
    }
  return NULL;
}

static uint32_t *
entry_reg (struct kvm_cpuid_entry2 *e, int reg)
{
  switch (reg)
    {
    case EAX: return &e->eax;
    case EBX: return &e->ebx;
    case ECX: return &e->ecx;
    default:  return &e->edx;
    }
}

bool
vr_cpuid_apply_mask (struct kvm_cpuid2 *cpuid,
                     const char        *mask,
                     GError           **error)
{
  g_auto (GStrv) names = NULL;

  if (mask == NULL || *mask == '\0')
    return true;

  names = g_strsplit (mask, ",", -1);
  for (guint n = 0; names[n] != NULL; n++)
    {
      const char *name = g_strstrip (names[n]);
      const VrCpuidFeature *f = NULL;
      struct kvm_cpuid_entry2 *e;

      if (*name == '\0')
        continue;
      for (gsize i = 0; i < G_N_ELEMENTS (features); i++)
        if (g_ascii_strcasecmp (features[i].name, name) == 0)
          f = &features[i];
      if (f == NULL)
        {
          g_set_error (error, VR_ERROR, VR_ERROR_INVALID_CONFIG,
                       "Unknown CPUID feature “%s” in the CPUID mask", name);
          return false;
        }
      e = find_entry (cpuid, f->function, f->index);
      if (e != NULL)
        *entry_reg (e, f->reg) &= ~(1u << f->bit);
      /* Hiding xsave also hides the OS-enabled bit and the AVX family built on it. */
      if (f->function == 1 && f->reg == ECX && f->bit == 26 && e != NULL)
        e->ecx &= ~((1u << 27) | (1u << 28) | (1u << 29) | (1u << 12));
    }
  return true;
}

struct kvm_cpuid2 *
vr_cpuid_get_supported (int          kvm_fd,
                        const char  *mask,
                        GError     **error)
{
  g_autofree struct kvm_cpuid2 *cpuid = NULL;
  uint32_t nent = 64;

  for (;;)
    {
      g_free (cpuid);
      cpuid = g_malloc0 (sizeof *cpuid + nent * sizeof (struct kvm_cpuid_entry2));
      cpuid->nent = nent;
      if (ioctl (kvm_fd, KVM_GET_SUPPORTED_CPUID, cpuid) == 0)
        break;
      if (errno != E2BIG || nent >= 4096)
        {
          g_set_error (error, VR_ERROR, VR_ERROR_KVM_CAPABILITY,
                       "KVM_GET_SUPPORTED_CPUID failed: %s", g_strerror (errno));
          return NULL;
        }
      nent *= 2;
    }

  if (!vr_cpuid_apply_mask (cpuid, mask, error))
    return NULL;
  return g_steal_pointer (&cpuid);
}

/* One package of @ncpus cores, one thread each: the extended topology leaf (0xb or 0x1f)
 * for the vCPU with x2APIC id @index, sub-leaves SMT, core, then the terminating one. */
static void
add_topology (struct kvm_cpuid2 *cpuid,
              uint32_t           function,
              unsigned           index,
              unsigned           ncpus)
{
  uint32_t core_shift = g_bit_storage (MAX (ncpus, 1u) - 1);
  struct kvm_cpuid_entry2 levels[3] = {
    { .function = function, .index = 0, .eax = 0, .ebx = 1, .ecx = (1u << 8) | 0, .edx = index },
    { .function = function, .index = 1, .eax = core_shift, .ebx = ncpus, .ecx = (2u << 8) | 1,
      .edx = index },
    { .function = function, .index = 2, .eax = 0, .ebx = 0, .ecx = 2, .edx = index },
  };

  for (unsigned i = 0; i < G_N_ELEMENTS (levels); i++)
    {
      levels[i].flags = KVM_CPUID_FLAG_SIGNIFCANT_INDEX;
      cpuid->entries[cpuid->nent++] = levels[i];
    }
}

struct kvm_cpuid2 *
vr_cpuid_for_vcpu (const struct kvm_cpuid2 *base,
                   unsigned                 index,
                   unsigned                 ncpus)
{
  struct kvm_cpuid2 *cpuid = g_malloc0 (sizeof *cpuid
                                        + (base->nent + 6) * sizeof (struct kvm_cpuid_entry2));
  bool has_0b = false, has_1f = false;

  /* Everything but the topology leaves, which are rebuilt below for this vCPU. */
  for (uint32_t i = 0; i < base->nent; i++)
    {
      const struct kvm_cpuid_entry2 *e = &base->entries[i];

      if (e->function == 0xb || e->function == 0x1f)
        {
          has_0b |= e->function == 0xb;
          has_1f |= e->function == 0x1f;
          continue;
        }
      cpuid->entries[cpuid->nent++] = *e;
    }
  if (has_0b)
    add_topology (cpuid, 0xb, index, ncpus);
  if (has_1f)
    add_topology (cpuid, 0x1f, index, ncpus);

  for (uint32_t i = 0; i < cpuid->nent; i++)
    {
      struct kvm_cpuid_entry2 *e = &cpuid->entries[i];

      switch (e->function)
        {
        case 1:
          /* Initial APIC id, logical processor count, the hypervisor bit. */
          e->ebx = (e->ebx & 0x0000ffffu) | (index << 24) | (MIN (ncpus, 255u) << 16);
          if (ncpus > 1)
            e->edx |= 1u << 28;  /* HTT: the count above is valid */
          e->ecx |= 1u << 31;
          break;
        case 4:
          /* Cores per package - 1 in EAX[31:26]: one package holding every vCPU. */
          e->eax = (e->eax & 0x03ffffffu) | ((MIN (ncpus, 64u) - 1) << 26);
          break;
        case 6:
          e->ecx &= ~(1u << 3);  /* no energy/performance bias MSR */
          break;
        default:
          break;
        }
    }
  return cpuid;
}
