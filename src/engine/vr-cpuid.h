/* SPDX-License-Identifier: GPL-3.0-or-later */
#pragma once

#include <glib.h>
#include <linux/kvm.h>
#include <stdbool.h>

G_BEGIN_DECLS

/*
 * The guest's CPUID: what KVM_GET_SUPPORTED_CPUID offers, minus the features named in the
 * machine's cpuid_mask, with the per-vCPU fields (APIC ids, topology) filled in.
 *
 * Masking: VrMachineConfig.cpuid_mask is a comma-separated list of feature names from the
 * table in vr-cpuid.c ("x2apic,avx,pdpe1gb"); `vireo-run --cpuid-mask` passes it through and
 * `vireo-run --cpuid-mask help` lists the names. An unknown name is an error.
 */

/* Returns the supported CPUID with @mask applied (g_free it). */
struct kvm_cpuid2 *vr_cpuid_get_supported (int          kvm_fd,
                                           const char  *mask,
                                           GError     **error);
/* A copy of @base adjusted for vCPU @index of @ncpus (g_free it). */
struct kvm_cpuid2 *vr_cpuid_for_vcpu      (const struct kvm_cpuid2 *base,
                                           unsigned                 index,
                                           unsigned                 ncpus);
/* Applies @mask to @cpuid in place. */
bool               vr_cpuid_apply_mask    (struct kvm_cpuid2 *cpuid,
                                           const char        *mask,
                                           GError           **error);
/* The names understood by the mask (g_strfreev it). */
char             **vr_cpuid_feature_names (void);

G_END_DECLS
