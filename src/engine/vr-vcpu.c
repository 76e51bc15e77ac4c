/* SPDX-License-Identifier: GPL-3.0-or-later */

#include "vr-vcpu.h"

#include <errno.h>
#include <signal.h>
#include <string.h>
#include <time.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "vr-machine-private.h"

/* The signal that knocks a vCPU thread out of KVM_RUN. Its handler does nothing: the point
 * is the EINTR. Installed once per process; the disposition is process-wide by nature. */
#define KICK_SIGNAL SIGUSR1

struct _VrVcpu
{
  unsigned        index;
  int             fd;
  struct kvm_run *run;
  int             run_size;
  GThread        *thread;
  pthread_t       tid;
  gint            started;   /* atomic: tid is valid */
  VrVcpuHost      host;
  guint64         n_io;      /* atomic counters */
  guint64         n_mmio;
  guint64         n_kicks;
  clockid_t       cpu_clock;     /* the thread's CPU-time clock while cpu_clock_ok */
  gint            cpu_clock_ok;  /* atomic */
  guint64         cpu_time_done; /* atomic: CPU time of threads that have returned, ns */
};

static void
kick_handler (int signo)
{
}

static gpointer
install_kick_handler (gpointer data)
{
  struct sigaction sa = { .sa_handler = kick_handler };

  sigemptyset (&sa.sa_mask);
  sigaction (KICK_SIGNAL, &sa, NULL);
  return NULL;
}

VrVcpu *
vr_vcpu_new (int                       vm_fd,
             unsigned                  index,
             int                       run_size,
             const struct kvm_cpuid2  *cpuid,
             GError                  **error)
{
  static GOnce once = G_ONCE_INIT;
  g_autofree VrVcpu *vcpu = g_new0 (VrVcpu, 1);
  void *run;

  g_once (&once, install_kick_handler, NULL);

  vcpu->index = index;
  vcpu->fd = ioctl (vm_fd, KVM_CREATE_VCPU, (unsigned long) index);
  if (vcpu->fd < 0)
    {
      g_set_error (error, VR_ERROR, VR_ERROR_KVM_CAPABILITY,
                   "KVM cannot create vCPU %u: %s", index, g_strerror (errno));
      return NULL;
    }
  run = mmap (NULL, run_size, PROT_READ | PROT_WRITE, MAP_SHARED, vcpu->fd, 0);
  if (run == MAP_FAILED)
    {
      g_set_error (error, VR_ERROR, VR_ERROR_NO_MEMORY,
                   "Cannot map the run area of vCPU %u: %s", index, g_strerror (errno));
      close (vcpu->fd);
      return NULL;
    }
  vcpu->run = run;
  vcpu->run_size = run_size;

  if (ioctl (vcpu->fd, KVM_SET_CPUID2, cpuid) < 0)
    {
      g_set_error (error, VR_ERROR, VR_ERROR_KVM_CAPABILITY,
                   "KVM refused the CPUID of vCPU %u: %s", index, g_strerror (errno));
      munmap (vcpu->run, run_size);
      close (vcpu->fd);
      return NULL;
    }
  return g_steal_pointer (&vcpu);
}

void
vr_vcpu_free (VrVcpu *vcpu)
{
  if (vcpu == NULL)
    return;
  g_assert (vcpu->thread == NULL);
  munmap (vcpu->run, vcpu->run_size);
  close (vcpu->fd);
  g_free (vcpu);
}

unsigned
vr_vcpu_get_index (VrVcpu *vcpu)
{
  return vcpu->index;
}

int
vr_vcpu_get_fd (VrVcpu *vcpu)
{
  return vcpu->fd;
}

static void
set_segment (struct kvm_segment *seg,
             uint16_t            selector,
             uint8_t             type,
             bool                code64)
{
  *seg = (struct kvm_segment) {
    .base = 0,
    .limit = 0xffffffff,
    .selector = selector,
    .type = type,
    .present = 1,
    .dpl = 0,
    .db = code64 ? 0 : 1,
    .s = 1,
    .l = code64 ? 1 : 0,
    .g = 1,
  };
}

bool
vr_vcpu_set_boot_state (VrVcpu                *vcpu,
                        const VrBootCpuState  *state,
                        GError               **error)
{
  struct kvm_sregs sregs;
  struct kvm_regs regs = { 0 };
  bool long_mode = state->mode == VR_CPU_MODE_LONG64;

  if (ioctl (vcpu->fd, KVM_GET_SREGS, &sregs) < 0)
    goto fail;

  set_segment (&sregs.cs, 0x10, 0xb, long_mode);
  set_segment (&sregs.ds, 0x18, 0x3, false);
  sregs.es = sregs.fs = sregs.gs = sregs.ss = sregs.ds;
  sregs.tr = (struct kvm_segment) { .limit = 0xffff, .type = 0xb, .present = 1 };
  sregs.ldt = (struct kvm_segment) { .limit = 0xffff, .type = 0x2, .present = 1 };
  sregs.gdt.base = VR_BOOT_GDT_ADDR;
  sregs.gdt.limit = 4 * 8 - 1;
  sregs.idt.base = 0;
  sregs.idt.limit = 0;

  if (long_mode)
    {
      sregs.cr0 = 0x80050033;  /* PG, AM, WP, NE, ET, MP, PE */
      sregs.cr3 = state->cr3;
      sregs.cr4 = 0x20;        /* PAE */
      sregs.efer = 0x500;      /* LMA, LME */
    }
  else
    {
      sregs.cr0 = 0x11;        /* ET, PE */
      sregs.cr3 = 0;
      sregs.cr4 = 0;
      sregs.efer = 0;
    }

  if (ioctl (vcpu->fd, KVM_SET_SREGS, &sregs) < 0)
    goto fail;

  regs.rflags = 0x2;
  regs.rip = state->rip;
  regs.rax = state->rax;
  regs.rbx = state->rbx;
  regs.rsi = state->rsi;
  if (ioctl (vcpu->fd, KVM_SET_REGS, &regs) < 0)
    goto fail;
  return true;

fail:
  g_set_error (error, VR_ERROR, VR_ERROR_FAILED,
               "Cannot set the boot state of vCPU %u: %s", vcpu->index, g_strerror (errno));
  return false;
}

bool
vr_vcpu_reset_tsc (VrVcpu  *vcpu,
                   GError **error)
{
  struct { struct kvm_msrs hdr; struct kvm_msr_entry entry; } msrs = {
    .hdr.nmsrs = 1,
    .entry = { .index = 0x10 /* IA32_TSC */, .data = 0 },
  };

  if (ioctl (vcpu->fd, KVM_SET_MSRS, &msrs) != 1)
    {
      g_set_error (error, VR_ERROR, VR_ERROR_FAILED, "Cannot set the TSC of vCPU %u: %s",
                   vcpu->index, g_strerror (errno));
      return false;
    }
  return true;
}

static void
handle_io (VrVcpu *vcpu)
{
  struct kvm_run *run = vcpu->run;
  uint8_t *data = (uint8_t *) run + run->io.data_offset;
  uint32_t size = run->io.size;
  bool is_write = run->io.direction == KVM_EXIT_IO_OUT;

  /* KVM guarantees the data area lies inside the run page (count * size <= page). */
  for (uint32_t i = 0; i < run->io.count; i++)
    {
      if (!vr_bus_dispatch (vcpu->host.pio, run->io.port, data, size, is_write))
        g_debug ("vCPU %u: unhandled %s of %u bytes at port 0x%x", vcpu->index,
                 is_write ? "write" : "read", size, run->io.port);
      data += size;
    }
  __atomic_add_fetch (&vcpu->n_io, 1, __ATOMIC_RELAXED);
}

static void
handle_mmio (VrVcpu *vcpu)
{
  struct kvm_run *run = vcpu->run;
  uint32_t len = MIN (run->mmio.len, 8u);

  if (!vr_bus_dispatch (vcpu->host.mmio, run->mmio.phys_addr, run->mmio.data, len,
                        run->mmio.is_write))
    g_debug ("vCPU %u: unhandled MMIO %s of %u bytes at 0x%llx", vcpu->index,
             run->mmio.is_write ? "write" : "read", len, run->mmio.phys_addr);
  __atomic_add_fetch (&vcpu->n_mmio, 1, __ATOMIC_RELAXED);
}

char *
vr_vcpu_dump (VrVcpu   *vcpu,
              VrMemory *memory)
{
  GString *s = g_string_new (NULL);
  struct kvm_regs r;
  struct kvm_sregs sr;

  if (ioctl (vcpu->fd, KVM_GET_REGS, &r) < 0 || ioctl (vcpu->fd, KVM_GET_SREGS, &sr) < 0)
    {
      g_string_append_printf (s, "(registers of vCPU %u unavailable: %s)", vcpu->index,
                              g_strerror (errno));
      return g_string_free (s, FALSE);
    }

  g_string_append_printf (s,
    "vCPU %u registers:\n"
    " RAX=%016llx RBX=%016llx RCX=%016llx RDX=%016llx\n"
    " RSI=%016llx RDI=%016llx RBP=%016llx RSP=%016llx\n"
    " R8 =%016llx R9 =%016llx R10=%016llx R11=%016llx\n"
    " R12=%016llx R13=%016llx R14=%016llx R15=%016llx\n"
    " RIP=%016llx RFLAGS=%08llx\n"
    " CS=%04x base=%llx l=%u db=%u  SS=%04x DS=%04x\n"
    " CR0=%08llx CR2=%016llx CR3=%016llx CR4=%08llx EFER=%llx\n"
    " GDT=%016llx/%04x IDT=%016llx/%04x\n",
    vcpu->index, r.rax, r.rbx, r.rcx, r.rdx, r.rsi, r.rdi, r.rbp, r.rsp,
    r.r8, r.r9, r.r10, r.r11, r.r12, r.r13, r.r14, r.r15, r.rip, r.rflags,
    sr.cs.selector, sr.cs.base, sr.cs.l, sr.cs.db, sr.ss.selector, sr.ds.selector,
    sr.cr0, sr.cr2, sr.cr3, sr.cr4, sr.efer,
    sr.gdt.base, sr.gdt.limit, sr.idt.base, sr.idt.limit);

  /* The bytes at CS:RIP, through the guest's own page tables. */
  {
    struct kvm_translation tr = { .linear_address = sr.cs.base + r.rip };
    uint8_t code[16];

    if (ioctl (vcpu->fd, KVM_TRANSLATE, &tr) == 0 && tr.valid
        && vr_memory_read (memory, tr.physical_address, code, sizeof code))
      {
        g_string_append_printf (s, " code at %llx (phys %llx):", tr.linear_address,
                                tr.physical_address);
        for (unsigned i = 0; i < sizeof code; i++)
          g_string_append_printf (s, " %02x", code[i]);
        g_string_append_c (s, '\n');
      }
    else
      g_string_append (s, " code at RIP: not in RAM\n");
  }
  return g_string_free (s, FALSE);
}

static char *
describe_error (VrVcpu *vcpu)
{
  struct kvm_run *run = vcpu->run;
  g_autoptr (GString) s = g_string_new (NULL);

  switch (run->exit_reason)
    {
    case KVM_EXIT_INTERNAL_ERROR:
      g_string_append_printf (s, "KVM internal error (suberror %u%s)",
                              run->internal.suberror,
                              run->internal.suberror == KVM_INTERNAL_ERROR_EMULATION
                                ? ": an instruction KVM could not emulate" : "");
      for (uint32_t i = 0; i < MIN (run->internal.ndata, 16u); i++)
        g_string_append_printf (s, "%s%llx", i == 0 ? ", data " : " ", run->internal.data[i]);
      break;
    case KVM_EXIT_FAIL_ENTRY:
      g_string_append_printf (s, "KVM could not enter the guest (hardware reason 0x%llx)",
                              run->fail_entry.hardware_entry_failure_reason);
      break;
    default:
      g_string_append_printf (s, "unexpected KVM exit %u", run->exit_reason);
      break;
    }
  return g_string_free (g_steal_pointer (&s), FALSE);
}

static gpointer
vcpu_thread (gpointer data)
{
  VrVcpu *vcpu = data;
  struct kvm_run *run = vcpu->run;
  sigset_t set;

  sigemptyset (&set);
  sigaddset (&set, KICK_SIGNAL);
  pthread_sigmask (SIG_UNBLOCK, &set, NULL);
  vcpu->tid = pthread_self ();
  if (pthread_getcpuclockid (vcpu->tid, &vcpu->cpu_clock) == 0)
    g_atomic_int_set (&vcpu->cpu_clock_ok, 1);
  g_atomic_int_set (&vcpu->started, 1);

  for (;;)
    {
      if (vcpu->host.wait_for_command (vcpu->host.opaque, vcpu) == VR_VCPU_QUIT)
        break;

      if (ioctl (vcpu->fd, KVM_RUN, 0) < 0)
        {
          if (errno == EINTR || errno == EAGAIN)
            {
              __atomic_store_n (&run->immediate_exit, 0, __ATOMIC_SEQ_CST);
              continue;
            }
          {
            g_autofree char *msg = g_strdup_printf ("KVM_RUN failed on vCPU %u: %s",
                                                    vcpu->index, g_strerror (errno));
            vcpu->host.exit (vcpu->host.opaque, vcpu, VR_VCPU_EXIT_ERROR, msg);
          }
          continue;
        }

      switch (run->exit_reason)
        {
        case KVM_EXIT_IO:
          handle_io (vcpu);
          break;
        case KVM_EXIT_MMIO:
          handle_mmio (vcpu);
          break;
        case KVM_EXIT_INTR:
        case KVM_EXIT_IRQ_WINDOW_OPEN:
        case KVM_EXIT_HLT:
          break;
        case KVM_EXIT_SHUTDOWN:
          vcpu->host.exit (vcpu->host.opaque, vcpu, VR_VCPU_EXIT_SHUTDOWN, NULL);
          break;
        case KVM_EXIT_SYSTEM_EVENT:
          if (run->system_event.type == KVM_SYSTEM_EVENT_RESET)
            vcpu->host.exit (vcpu->host.opaque, vcpu, VR_VCPU_EXIT_SYSTEM_RESET, NULL);
          else
            vcpu->host.exit (vcpu->host.opaque, vcpu, VR_VCPU_EXIT_SYSTEM_SHUTDOWN, NULL);
          break;
        default:
          {
            g_autofree char *msg = describe_error (vcpu);
            vcpu->host.exit (vcpu->host.opaque, vcpu, VR_VCPU_EXIT_ERROR, msg);
          }
          break;
        }
    }

  {
    struct timespec ts;

    g_atomic_int_set (&vcpu->cpu_clock_ok, 0);
    if (clock_gettime (CLOCK_THREAD_CPUTIME_ID, &ts) == 0)
      __atomic_add_fetch (&vcpu->cpu_time_done,
                          (guint64) ts.tv_sec * G_GUINT64_CONSTANT (1000000000)
                            + (guint64) ts.tv_nsec,
                          __ATOMIC_RELAXED);
  }
  return NULL;
}

void
vr_vcpu_start (VrVcpu           *vcpu,
               const VrVcpuHost *host)
{
  g_autofree char *name = g_strdup_printf ("vcpu%u", vcpu->index);

  g_assert (vcpu->thread == NULL);
  vcpu->host = *host;
  g_atomic_int_set (&vcpu->started, 0);
  __atomic_store_n (&vcpu->run->immediate_exit, 0, __ATOMIC_SEQ_CST);
  vcpu->thread = g_thread_new (name, vcpu_thread, vcpu);
}

void
vr_vcpu_kick (VrVcpu *vcpu)
{
  __atomic_store_n (&vcpu->run->immediate_exit, 1, __ATOMIC_SEQ_CST);
  if (g_atomic_int_get (&vcpu->started))
    pthread_kill (vcpu->tid, KICK_SIGNAL);
  __atomic_add_fetch (&vcpu->n_kicks, 1, __ATOMIC_RELAXED);
}

void
vr_vcpu_join (VrVcpu *vcpu)
{
  if (vcpu->thread == NULL)
    return;
  g_thread_join (vcpu->thread);
  vcpu->thread = NULL;
  g_atomic_int_set (&vcpu->started, 0);
}

void
vr_vcpu_get_stats (VrVcpu      *vcpu,
                   VrVcpuStats *stats)
{
  stats->io = __atomic_load_n (&vcpu->n_io, __ATOMIC_RELAXED);
  stats->mmio = __atomic_load_n (&vcpu->n_mmio, __ATOMIC_RELAXED);
  stats->kicks = __atomic_load_n (&vcpu->n_kicks, __ATOMIC_RELAXED);
}

guint64
vr_vcpu_get_cpu_time (VrVcpu *vcpu)
{
  guint64 t = __atomic_load_n (&vcpu->cpu_time_done, __ATOMIC_RELAXED);
  struct timespec ts;

  /* A thread that returns between the check and the read makes clock_gettime() fail
   * (EINVAL): its time is then in cpu_time_done on the next call. */
  if (g_atomic_int_get (&vcpu->cpu_clock_ok) && clock_gettime (vcpu->cpu_clock, &ts) == 0)
    t += (guint64) ts.tv_sec * G_GUINT64_CONSTANT (1000000000) + (guint64) ts.tv_nsec;
  return t;
}
