/* SPDX-License-Identifier: GPL-3.0-or-later */
#pragma once

#include <glib.h>
#include <linux/kvm.h>
#include <pthread.h>
#include <stdbool.h>

#include "boot/boot.h"
#include "vr-bus.h"

G_BEGIN_DECLS

/*
 * One vCPU: its KVM fd, the shared kvm_run page and the thread that runs KVM_RUN.
 *
 * The thread asks the machine (through VrVcpuHost) what to do before every entry: run, park
 * (paused) or quit. Anyone can make it look again with vr_vcpu_kick(): that sets the run
 * page's immediate_exit and signals the thread, so it leaves KVM_RUN, or never enters it.
 */

typedef struct _VrVcpu VrVcpu;

typedef enum
{
  VR_VCPU_RUN,
  VR_VCPU_QUIT,
} VrVcpuCommand;

typedef enum
{
  VR_VCPU_EXIT_SHUTDOWN,        /* triple fault */
  VR_VCPU_EXIT_SYSTEM_RESET,    /* KVM_SYSTEM_EVENT_RESET */
  VR_VCPU_EXIT_SYSTEM_SHUTDOWN, /* KVM_SYSTEM_EVENT_SHUTDOWN */
  VR_VCPU_EXIT_ERROR,           /* internal error, failed entry, unknown exit */
} VrVcpuExit;

typedef struct
{
  VrBus *pio;
  VrBus *mmio;
  /* Called by the vCPU thread before each KVM_RUN; may block while the machine is paused. */
  VrVcpuCommand (*wait_for_command) (void *opaque, VrVcpu *vcpu);
  /* Called when the guest did something only the machine can handle. @message is set for
   * VR_VCPU_EXIT_ERROR (a register dump and the failing bytes). */
  void          (*exit)             (void *opaque, VrVcpu *vcpu, VrVcpuExit what,
                                     const char *message);
  void          *opaque;
} VrVcpuHost;

VrVcpu   *vr_vcpu_new          (int                        vm_fd,
                                unsigned                   index,
                                int                        run_size,
                                const struct kvm_cpuid2   *cpuid,
                                GError                   **error);
void      vr_vcpu_free         (VrVcpu                    *vcpu);
unsigned  vr_vcpu_get_index    (VrVcpu                    *vcpu);
int       vr_vcpu_get_fd       (VrVcpu                    *vcpu);
/* Sets up the boot processor's registers for the loader's entry state. */
bool      vr_vcpu_set_boot_state (VrVcpu                  *vcpu,
                                  const VrBootCpuState    *state,
                                  GError                 **error);
/* Writes 0 to the TSC. Done for every vCPU of a machine one after the other, KVM takes the
 * writes as one synchronised TSC, so every vCPU counts from the same origin. */
bool      vr_vcpu_reset_tsc    (VrVcpu                    *vcpu,
                                GError                   **error);
void      vr_vcpu_start        (VrVcpu                    *vcpu,
                                const VrVcpuHost          *host);
void      vr_vcpu_kick         (VrVcpu                    *vcpu);
/* Waits for the thread to return (after the host answered VR_VCPU_QUIT). */
void      vr_vcpu_join         (VrVcpu                    *vcpu);
/* A register dump for error reports (g_free it). */
char     *vr_vcpu_dump         (VrVcpu                    *vcpu,
                                VrMemory                  *memory);

/*
 * Snapshots. vr_vcpu_settle() runs on the vCPU's own thread before it parks: an I/O or MMIO
 * exit is only complete (the result in RAX, RIP past the instruction) after the next
 * KVM_RUN, so it re-enters with immediate_exit set, which finishes the instruction and
 * returns without running the guest further. Once every vCPU of a machine is parked,
 * vr_vcpu_save_state() captures the whole CPU (MP state, registers, segment and control
 * registers, FPU/XSAVE, XCRs, debug registers, LAPIC, MSRs including the TSC and kvmclock,
 * pending events) and vr_vcpu_load_state() puts it back into a fresh vCPU (KVM validates
 * the values; the sizes are checked here). @kvm_fd is the /dev/kvm descriptor (MSR list).
 */
void      vr_vcpu_settle       (VrVcpu                    *vcpu);
GVariant *vr_vcpu_save_state   (VrVcpu                    *vcpu,
                                int                        kvm_fd,
                                GError                   **error);
bool      vr_vcpu_load_state   (VrVcpu                    *vcpu,
                                int                        kvm_fd,
                                GVariant                  *state,
                                GError                   **error);

/* Exit counters, for the app's performance page and the benchmarks. */
typedef struct
{
  guint64 io;
  guint64 mmio;
  guint64 kicks;
} VrVcpuStats;

void      vr_vcpu_get_stats    (VrVcpu                    *vcpu,
                                VrVcpuStats               *stats);
/* CPU time (user + system) its threads have used, in nanoseconds. Any thread. */
guint64   vr_vcpu_get_cpu_time (VrVcpu                    *vcpu);

G_END_DECLS
