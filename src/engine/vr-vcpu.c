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
  bool            pending;   /* the last exit (I/O, MMIO) completes at the next KVM_RUN;
                              * only the vCPU's own thread touches it */
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

      vcpu->pending = false;
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
          vcpu->pending = true;
          break;
        case KVM_EXIT_MMIO:
          handle_mmio (vcpu);
          vcpu->pending = true;
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

/* ---- snapshots ---------------------------------------------------------------------------- */

void
vr_vcpu_settle (VrVcpu *vcpu)
{
  if (!vcpu->pending)
    return;
  /* With immediate_exit set KVM finishes the pending instruction and returns EINTR before
   * running any guest code. */
  __atomic_store_n (&vcpu->run->immediate_exit, 1, __ATOMIC_SEQ_CST);
  if (ioctl (vcpu->fd, KVM_RUN, 0) == 0 || (errno != EINTR && errno != EAGAIN))
    g_warning ("vCPU %u: KVM did not settle the pending exit (%s)", vcpu->index,
               g_strerror (errno));
  vcpu->pending = false;
}

static GVariant *
bytes_variant (const void *data,
               size_t      len)
{
  return g_variant_new_fixed_array (G_VARIANT_TYPE_BYTE, data, len, 1);
}

/* Every MSR KVM can save and restore for this host (g_free it). */
static struct kvm_msr_list *
msr_index_list (int      kvm_fd,
                GError **error)
{
  struct kvm_msr_list probe = { .nmsrs = 0 };
  struct kvm_msr_list *list;

  if (ioctl (kvm_fd, KVM_GET_MSR_INDEX_LIST, &probe) < 0 && errno != E2BIG)
    goto fail;
  list = g_malloc0 (sizeof *list + probe.nmsrs * sizeof (uint32_t));
  list->nmsrs = probe.nmsrs;
  if (ioctl (kvm_fd, KVM_GET_MSR_INDEX_LIST, list) < 0)
    {
      g_free (list);
      goto fail;
    }
  return list;

fail:
  g_set_error (error, VR_ERROR, VR_ERROR_KVM_CAPABILITY, "KVM cannot list its MSRs: %s",
               g_strerror (errno));
  return NULL;
}

/* KVM_GET_MSRS/KVM_SET_MSRS stop at the first MSR they refuse: go on after it, so one MSR
 * the host does not handle does not lose the rest. Refused entries get index 0xffffffff. */
static void
msrs_batch (int                    fd,
            unsigned long          request,
            struct kvm_msr_entry  *entries,
            unsigned               n)
{
  g_autofree struct kvm_msrs *buf = g_malloc0 (sizeof *buf + n * sizeof *entries);
  unsigned done = 0;

  while (done < n)
    {
      int r;

      buf->nmsrs = n - done;
      memcpy (buf->entries, entries + done, (n - done) * sizeof *entries);
      r = ioctl (fd, request, buf);
      if (r < 0)
        r = 0;
      memcpy (entries + done, buf->entries, (size_t) r * sizeof *entries);
      done += (unsigned) r;
      if (done < n)
        {
          g_debug ("vCPU: MSR 0x%x refused by KVM", entries[done].index);
          entries[done].index = 0xffffffff;
          done++;
        }
    }
}

/* The size of KVM's XSAVE area for this host: KVM_CAP_XSAVE2 (AMX and later) or the classic
 * 4 KiB; 0 without XSAVE (the legacy FPU state is used then). */
static size_t
xsave_size (int kvm_fd)
{
  int size;

  if (ioctl (kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_XSAVE) <= 0)
    return 0;
  size = ioctl (kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_XSAVE2);
  return size > (int) sizeof (struct kvm_xsave) ? (size_t) size : sizeof (struct kvm_xsave);
}

typedef struct
{
  const char    *key;
  unsigned long  get;
  unsigned long  set;
  size_t         size;
} CpuPiece;

/* In the order they are put back (Firecracker's, which KVM's checks are happy with): the
 * LAPIC before the MSRs (TSC deadline), the MSRs before the events. XSAVE, MSRs and the MP
 * state are handled apart. */
static const CpuPiece cpu_pieces[] = {
  { "regs",      KVM_GET_REGS,        KVM_SET_REGS,        sizeof (struct kvm_regs) },
  { "sregs",     KVM_GET_SREGS,       KVM_SET_SREGS,       sizeof (struct kvm_sregs) },
  { "xcrs",      KVM_GET_XCRS,        KVM_SET_XCRS,        sizeof (struct kvm_xcrs) },
  { "debugregs", KVM_GET_DEBUGREGS,   KVM_SET_DEBUGREGS,   sizeof (struct kvm_debugregs) },
  { "lapic",     KVM_GET_LAPIC,       KVM_SET_LAPIC,       sizeof (struct kvm_lapic_state) },
};

static bool
cpu_ioctl (VrVcpu        *vcpu,
           unsigned long  request,
           void          *arg,
           const char    *what,
           GError       **error)
{
  if (ioctl (vcpu->fd, request, arg) >= 0)
    return true;
  g_set_error (error, VR_ERROR, VR_ERROR_FAILED, "KVM cannot %s of vCPU %u: %s", what,
               vcpu->index, g_strerror (errno));
  return false;
}

GVariant *
vr_vcpu_save_state (VrVcpu  *vcpu,
                    int      kvm_fd,
                    GError **error)
{
  g_auto (GVariantBuilder) b = G_VARIANT_BUILDER_INIT (G_VARIANT_TYPE_VARDICT);
  g_autofree struct kvm_msr_list *list = NULL;
  g_autofree struct kvm_msr_entry *msrs = NULL;
  struct kvm_mp_state mp;
  struct kvm_vcpu_events events;
  size_t xsize = xsave_size (kvm_fd);
  GVariantBuilder mb;

  /* KVM_GET_MP_STATE first: it makes the LAPIC take pending INIT/SIPI events, which
   * changes the rest of the state. */
  if (!cpu_ioctl (vcpu, KVM_GET_MP_STATE, &mp, "read the MP state", error))
    return NULL;
  g_variant_builder_add (&b, "{sv}", "mp-state", g_variant_new_uint32 (mp.mp_state));

  for (unsigned i = 0; i < G_N_ELEMENTS (cpu_pieces); i++)
    {
      g_autofree void *buf = g_malloc0 (cpu_pieces[i].size);
      g_autofree char *what = g_strdup_printf ("read the %s", cpu_pieces[i].key);

      if (!cpu_ioctl (vcpu, cpu_pieces[i].get, buf, what, error))
        return NULL;
      g_variant_builder_add (&b, "{sv}", cpu_pieces[i].key,
                             bytes_variant (buf, cpu_pieces[i].size));
    }

  if (xsize > 0)
    {
      g_autofree void *buf = g_malloc0 (xsize);
      unsigned long req = xsize > sizeof (struct kvm_xsave) ? KVM_GET_XSAVE2 : KVM_GET_XSAVE;

      if (!cpu_ioctl (vcpu, req, buf, "read the XSAVE state", error))
        return NULL;
      g_variant_builder_add (&b, "{sv}", "xsave", bytes_variant (buf, xsize));
    }
  else
    {
      struct kvm_fpu fpu;

      if (!cpu_ioctl (vcpu, KVM_GET_FPU, &fpu, "read the FPU state", error))
        return NULL;
      g_variant_builder_add (&b, "{sv}", "fpu", bytes_variant (&fpu, sizeof fpu));
    }

  list = msr_index_list (kvm_fd, error);
  if (list == NULL)
    return NULL;
  msrs = g_new0 (struct kvm_msr_entry, MAX (list->nmsrs, 1u));
  for (unsigned i = 0; i < list->nmsrs; i++)
    msrs[i].index = list->indices[i];
  msrs_batch (vcpu->fd, KVM_GET_MSRS, msrs, list->nmsrs);
  g_variant_builder_init (&mb, G_VARIANT_TYPE ("a(ut)"));
  for (unsigned i = 0; i < list->nmsrs; i++)
    if (msrs[i].index != 0xffffffff)
      g_variant_builder_add (&mb, "(ut)", msrs[i].index, (guint64) msrs[i].data);
  g_variant_builder_add (&b, "{sv}", "msrs", g_variant_builder_end (&mb));

  /* Events last: exceptions and NMIs pending at this instant. */
  if (!cpu_ioctl (vcpu, KVM_GET_VCPU_EVENTS, &events, "read the pending events", error))
    return NULL;
  g_variant_builder_add (&b, "{sv}", "events", bytes_variant (&events, sizeof events));
  return g_variant_builder_end (&b);
}

/* The bytes of @key in @dict: exactly @size of them, or an error. */
static bool
lookup_bytes (GVariant   *dict,
              const char *key,
              void       *out,
              size_t      size,
              unsigned    index,
              GError    **error)
{
  g_autoptr (GVariant) v = g_variant_lookup_value (dict, key, G_VARIANT_TYPE_BYTESTRING);
  gsize len = 0;
  const void *data = v ? g_variant_get_fixed_array (v, &len, 1) : NULL;

  if (v == NULL || len != size)
    {
      g_set_error (error, VR_ERROR, VR_ERROR_FAILED,
                   "The saved state of vCPU %u has no valid “%s” (%" G_GSIZE_FORMAT
                   " bytes, expected %" G_GSIZE_FORMAT ")", index, key, len, size);
      return false;
    }
  memcpy (out, data, size);
  return true;
}

bool
vr_vcpu_load_state (VrVcpu   *vcpu,
                    int       kvm_fd,
                    GVariant *state,
                    GError  **error)
{
  g_autoptr (GVariant) msrs_v = NULL;
  g_autofree struct kvm_msr_entry *msrs = NULL;
  struct kvm_mp_state mp = { 0 };
  struct kvm_vcpu_events events;
  size_t xsize = xsave_size (kvm_fd);
  gsize n_msrs;

  if (!g_variant_is_of_type (state, G_VARIANT_TYPE_VARDICT)
      || !g_variant_lookup (state, "mp-state", "u", &mp.mp_state))
    {
      g_set_error (error, VR_ERROR, VR_ERROR_FAILED,
                   "The saved state of vCPU %u is not a vCPU state", vcpu->index);
      return false;
    }
  if (!cpu_ioctl (vcpu, KVM_SET_MP_STATE, &mp, "restore the MP state", error))
    return false;

  for (unsigned i = 0; i < G_N_ELEMENTS (cpu_pieces); i++)
    {
      g_autofree void *buf = g_malloc0 (cpu_pieces[i].size);
      g_autofree char *what = g_strdup_printf ("restore the %s", cpu_pieces[i].key);

      if (!lookup_bytes (state, cpu_pieces[i].key, buf, cpu_pieces[i].size, vcpu->index, error))
        return false;
      /* XSAVE goes between the segment registers and the XCRs, as on the save side. */
      if (g_str_equal (cpu_pieces[i].key, "xcrs"))
        {
          if (xsize > 0)
            {
              g_autoptr (GVariant) xv = g_variant_lookup_value (state, "xsave",
                                                                G_VARIANT_TYPE_BYTESTRING);
              g_autofree void *xbuf = g_malloc0 (xsize);
              gsize len = 0;
              const void *data = xv ? g_variant_get_fixed_array (xv, &len, 1) : NULL;

              if (data == NULL || len < sizeof (struct kvm_xsave) || len > xsize)
                {
                  g_set_error (error, VR_ERROR, VR_ERROR_FAILED,
                               "The saved XSAVE state of vCPU %u does not fit this host's "
                               "(%" G_GSIZE_FORMAT " bytes, at most %" G_GSIZE_FORMAT ")",
                               vcpu->index, len, xsize);
                  return false;
                }
              memcpy (xbuf, data, len);
              if (!cpu_ioctl (vcpu, KVM_SET_XSAVE, xbuf, "restore the XSAVE state", error))
                return false;
            }
          else
            {
              struct kvm_fpu fpu;

              if (!lookup_bytes (state, "fpu", &fpu, sizeof fpu, vcpu->index, error)
                  || !cpu_ioctl (vcpu, KVM_SET_FPU, &fpu, "restore the FPU state", error))
                return false;
            }
        }
      if (!cpu_ioctl (vcpu, cpu_pieces[i].set, buf, what, error))
        return false;
    }

  msrs_v = g_variant_lookup_value (state, "msrs", G_VARIANT_TYPE ("a(ut)"));
  if (msrs_v == NULL || (n_msrs = g_variant_n_children (msrs_v)) > 4096)
    {
      g_set_error (error, VR_ERROR, VR_ERROR_FAILED,
                   "The saved state of vCPU %u has no valid MSR list", vcpu->index);
      return false;
    }
  msrs = g_new0 (struct kvm_msr_entry, MAX (n_msrs, 1u));
  for (gsize i = 0; i < n_msrs; i++)
    {
      guint32 index;
      guint64 data;

      g_variant_get_child (msrs_v, i, "(ut)", &index, &data);
      msrs[i].index = index;
      msrs[i].data = data;
    }
  msrs_batch (vcpu->fd, KVM_SET_MSRS, msrs, (unsigned) n_msrs);

  if (!lookup_bytes (state, "events", &events, sizeof events, vcpu->index, error))
    return false;
  /* Restore what was saved; the flags say which optional parts are valid. */
  events.flags &= KVM_VCPUEVENT_VALID_NMI_PENDING | KVM_VCPUEVENT_VALID_SIPI_VECTOR
                  | KVM_VCPUEVENT_VALID_SHADOW | KVM_VCPUEVENT_VALID_SMM;
  return cpu_ioctl (vcpu, KVM_SET_VCPU_EVENTS, &events, "restore the pending events", error);
}
