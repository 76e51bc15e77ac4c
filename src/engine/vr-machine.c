/* SPDX-License-Identifier: GPL-3.0-or-later */

#include "config.h"

#include "vr-machine-private.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "boot/boot.h"
#include "boot/firmware.h"
#include "hw/hw.h"
#include "hw/bochs-display.h"
#include "hw/pci.h"
#include "disk/vr-disk.h"
#include "net/vr-net.h"
#include "virtio/virtio.h"
#include "virtio/scsi.h"
#include <linux/input-event-codes.h>
#include "snapshot/vr-snapshot.h"
#include "vr-acpi.h"
#include "vr-smbios.h"
#include "vr-bus.h"
#include "vr-chardev.h"
#include "vr-cpuid.h"
#include "vr-display-private.h"
#include "vr-iothread.h"
#include "vr-input.h"
#include "vr-irq.h"
#include "vr-memory.h"
#include "vr-vcpu.h"

/*
 * The machine: a KVM VM, its vCPU threads, its devices and its lifecycle.
 *
 * Threads and locks:
 * - The caller's thread calls the public API. Lifecycle transitions (start, stop, pause,
 *   resume, reset, and the handling of guest requests) are serialised by @control.
 * - One thread per vCPU runs KVM_RUN. Before each entry it takes @lock and checks @quit and
 *   @pause; it parks on @cond while paused. A guest request (reset, power-off, debug exit,
 *   triple fault, internal error) is recorded under @lock, every vCPU is kicked out of the
 *   guest and told to quit, and the request is handled on the I/O thread under @control.
 * - The I/O thread runs device backends and the request handler.
 * - Events go to the caller's GMainContext, always through an idle source (never inline),
 *   each holding a reference on the machine.
 * Lock order: @control, then @lock. Device locks are leaves.
 *
 * A reset (and every start) re-creates the KVM VM from scratch: every piece of CPU and
 * irqchip state is fresh, RAM is kept on a reset and discarded on a cold start, devices are
 * reset through their ops (the CMOS NVRAM survives, as on a PC).
 */

/* With firmware: the PIIX functions' slot, then the rest. */
#define FIRMWARE_CHIPSET_SLOT      1
#define FIRMWARE_FIRST_SLOT        2
#define FIRMWARE_BOOT_FAIL_WAIT_MS 5000

#define KVM_TSS_ADDR          0xfffbd000ull
#define KVM_IDENTITY_MAP_ADDR 0xfffbc000ull

typedef enum
{
  REQUEST_NONE,
  REQUEST_RESET,
  REQUEST_TRIPLE_FAULT,
  REQUEST_POWER_OFF,
  REQUEST_DEBUG_EXIT,
  REQUEST_ERROR,
} Request;

struct _VrMachine
{
  gint             ref_count;
  VrMachineConfig  config;

  int                 kvm_fd;
  int                 vm_fd;     /* -1 while no VM exists */
  int                 run_size;
  struct kvm_cpuid2  *cpuid;

  VrMemory     *memory;
  VrBootImage  *boot;           /* NULL when the config names no kernel */
  VrFirmware   *firmware;       /* NULL when the config names no firmware */
  VrDevice     *cdrom;          /* the virtio-scsi CD-ROM drive, NULL without one */
  unsigned      cdrom_slot;
  unsigned      disk_slots[VR_MAX_DISKS];
  GBytes       *acpi_tables;
  VrBus        *pio;
  VrBus        *mmio;
  VrIrqChip    *irq;
  VrIoThread   *iothread;
  VrChardev    *serial_chr;
  GPtrArray    *devices;        /* VrDevice *, destroyed in reverse order */
  GPtrArray    *disks;          /* VrDisk *, config.disks order (owned by their devices) */
  GPtrArray    *blk_devices;    /* VrDevice *, the virtio-blk ones (counters) */
  GPtrArray    *net_devices;    /* VrDevice *, the virtio-net ones */
  VrDevice     *acpi_pm;
  VrDevice     *pci_host;
  VrDevice     *keyboard;       /* virtio-input, NULL without config.input */
  VrDevice     *tablet;
  VrDevice     *i8042;
  VrInput      *input;          /* routes vr_machine_input_*() (own lock) */
  VrChardev    *console_chr;
  VrDisplay    *display;        /* NULL without config.display */
  VrDevice     *bochs;          /* the bochs-display card, NULL without one */
  unsigned      next_slot;      /* the next free PCI slot */
  VrVcpu      **vcpus;          /* config.cpus entries while a VM exists */

  GMutex           control;
  GMutex           lock;
  GCond            cond;
  VrMachineState   state;
  bool             quit;        /* vCPUs must leave their threads */
  bool             pause;       /* vCPUs must park */
  unsigned         parked;
  unsigned         active;      /* vCPU threads not yet told to quit */
  Request          request;
  char            *request_message;
  uint32_t         request_value;
  VrStopReason     stop_reason;
  int              exit_status;

  GMainContext    *event_context;
  VrEventFunc      event_func;
  gpointer         event_data;
  GDestroyNotify   event_destroy;
  gint             disposed;    /* atomic: vr_machine_free() was called */
  gint             snapshot_generation; /* atomic: moves at every snapshot save/restore */
};

G_DEFINE_QUARK (vr-error-quark, vr_error)

static void machine_unref (VrMachine *self);
static void snapshot_port_io (void *opaque, uint64_t offset, uint8_t *data, uint32_t len,
                              bool is_write);

/* ---- configuration ---------------------------------------------------------------------- */

void
vr_machine_config_init (VrMachineConfig *config)
{
  memset (config, 0, sizeof *config);
  config->memory = 256u << 20;
  config->cpus = 1;
  config->serial = VR_SERIAL_STDIO;
  config->on_reset = VR_RESET_RESTART;
}

void
vr_machine_config_clear (VrMachineConfig *config)
{
  g_clear_pointer (&config->name, g_free);
  g_clear_pointer (&config->kernel, g_free);
  g_clear_pointer (&config->initrd, g_free);
  g_clear_pointer (&config->cmdline, g_free);
  g_clear_pointer (&config->serial_path, g_free);
  g_clear_pointer (&config->cpuid_mask, g_free);
  for (unsigned i = 0; config->disks && i < config->n_disks; i++)
    {
      g_free (config->disks[i].path);
      g_free (config->disks[i].format);
      g_free (config->disks[i].serial);
    }
  g_clear_pointer (&config->disks, g_free);
  config->n_disks = 0;
  g_clear_pointer (&config->nics, g_strfreev);
  g_clear_pointer (&config->console_path, g_free);
  g_clear_pointer (&config->firmware, g_free);
  g_clear_pointer (&config->vga_rom, g_free);
  g_clear_pointer (&config->cdrom, g_free);
  g_clear_pointer (&config->uuid, g_free);
}

static void
config_copy (VrMachineConfig       *dst,
             const VrMachineConfig *src)
{
  *dst = *src;
  dst->name = g_strdup (src->name ? src->name : "vireo");
  dst->kernel = g_strdup (src->kernel);
  dst->initrd = g_strdup (src->initrd);
  dst->cmdline = g_strdup (src->cmdline);
  dst->serial_path = g_strdup (src->serial_path);
  dst->cpuid_mask = g_strdup (src->cpuid_mask);
  dst->disks = src->n_disks ? g_new0 (VrDiskConfig, src->n_disks) : NULL;
  for (unsigned i = 0; i < src->n_disks; i++)
    {
      dst->disks[i].path = g_strdup (src->disks[i].path);
      dst->disks[i].format = g_strdup (src->disks[i].format);
      dst->disks[i].readonly = src->disks[i].readonly;
      dst->disks[i].serial = g_strdup (src->disks[i].serial);
    }
  dst->nics = g_strdupv (src->nics);
  dst->console_path = g_strdup (src->console_path);
  dst->firmware = g_strdup (src->firmware);
  dst->vga_rom = g_strdup (src->vga_rom);
  dst->cdrom = g_strdup (src->cdrom);
  dst->uuid = g_strdup (src->uuid);
}

bool
vr_parse_size (const char  *text,
               uint64_t    *out,
               GError     **error)
{
  guint64 value;
  char *end;
  unsigned shift = 0;

  if (text == NULL || !g_ascii_isdigit (*text))
    goto bad;
  errno = 0;
  value = g_ascii_strtoull (text, &end, 10);
  if (errno != 0)
    goto bad;
  switch (g_ascii_toupper (*end))
    {
    case '\0': shift = 0; break;
    case 'K': shift = 10; end++; break;
    case 'M': shift = 20; end++; break;
    case 'G': shift = 30; end++; break;
    case 'T': shift = 40; end++; break;
    default: goto bad;
    }
  if (g_ascii_toupper (*end) == 'I' && g_ascii_toupper (end[1]) == 'B')
    end += 2;
  else if (g_ascii_toupper (*end) == 'B')
    end++;
  if (*end != '\0' || (shift > 0 && value > (G_MAXUINT64 >> shift)))
    goto bad;
  *out = value << shift;
  return true;

bad:
  g_set_error (error, VR_ERROR, VR_ERROR_INVALID_CONFIG,
               "“%s” is not a size (examples: 512M, 2G, 1048576)", text ? text : "");
  return false;
}

const char *
vr_machine_state_to_string (VrMachineState state)
{
  switch (state)
    {
    case VR_STATE_CREATED: return "created";
    case VR_STATE_RUNNING: return "running";
    case VR_STATE_PAUSED:  return "paused";
    case VR_STATE_STOPPED: return "stopped";
    default:               return "unknown";
    }
}

const char *
vr_stop_reason_to_string (VrStopReason reason)
{
  switch (reason)
    {
    case VR_STOP_NONE:         return "none";
    case VR_STOP_POWER_OFF:    return "powered off";
    case VR_STOP_DEBUG_EXIT:   return "debug exit";
    case VR_STOP_RESET:        return "guest reset";
    case VR_STOP_TRIPLE_FAULT: return "triple fault";
    case VR_STOP_GUEST_ERROR:  return "guest error";
    case VR_STOP_REQUESTED:    return "stopped";
    default:                   return "unknown";
    }
}

/* ---- events ----------------------------------------------------------------------------- */

typedef struct
{
  VrMachine *machine;
  VrEvent    event;
  char      *message;
} EventClosure;

static void
event_closure_free (gpointer data)
{
  EventClosure *c = data;

  machine_unref (c->machine);
  g_free (c->message);
  g_free (c);
}

static gboolean
deliver_event (gpointer data)
{
  EventClosure *c = data;
  VrMachine *self = c->machine;

  if (!g_atomic_int_get (&self->disposed) && self->event_func)
    self->event_func (self, &c->event, self->event_data);
  return G_SOURCE_REMOVE;
}

static void
emit_event (VrMachine    *self,
            VrEventType   type,
            const char   *message)
{
  g_autoptr (GSource) source = NULL;
  EventClosure *c;

  if (self->event_func == NULL)
    return;

  c = g_new0 (EventClosure, 1);
  c->machine = self;
  g_atomic_int_inc (&self->ref_count);
  c->message = g_strdup (message);
  c->event.type = type;
  g_mutex_lock (&self->lock);
  c->event.state = self->state;
  c->event.reason = self->stop_reason;
  c->event.exit_status = self->exit_status;
  g_mutex_unlock (&self->lock);
  c->event.message = c->message;

  source = g_idle_source_new ();
  g_source_set_priority (source, G_PRIORITY_DEFAULT);
  g_source_set_callback (source, deliver_event, c, event_closure_free);
  g_source_set_static_name (source, "[vireo] machine event");
  g_source_attach (source, self->event_context);
}

void
vr_machine_set_event_func (VrMachine      *self,
                           GMainContext   *context,
                           VrEventFunc     func,
                           gpointer        user_data,
                           GDestroyNotify  destroy)
{
  g_return_if_fail (self != NULL);

  if (self->event_destroy)
    self->event_destroy (self->event_data);
  g_clear_pointer (&self->event_context, g_main_context_unref);
  self->event_context = context ? g_main_context_ref (context)
                                : g_main_context_ref_thread_default ();
  self->event_func = func;
  self->event_data = user_data;
  self->event_destroy = destroy;
}

static void
set_state (VrMachine      *self,
           VrMachineState  state)
{
  g_mutex_lock (&self->lock);
  self->state = state;
  g_mutex_unlock (&self->lock);
  emit_event (self, VR_EVENT_STATE_CHANGED, NULL);
}

/* ---- vCPU threads ----------------------------------------------------------------------- */

static VrVcpuCommand
vcpu_wait_for_command (void   *opaque,
                       VrVcpu *vcpu)
{
  VrMachine *self = opaque;
  VrVcpuCommand cmd = VR_VCPU_RUN;

  bool settled = false;

  g_mutex_lock (&self->lock);
  while (self->pause && !self->quit && self->request == REQUEST_NONE)
    {
      if (!settled)
        {
          /* Finish the instruction of the last exit, so that a parked vCPU's state is
           * complete (a snapshot may read it). */
          g_mutex_unlock (&self->lock);
          vr_vcpu_settle (vcpu);
          g_mutex_lock (&self->lock);
          settled = true;
          continue;
        }
      self->parked++;
      g_cond_broadcast (&self->cond);
      g_cond_wait (&self->cond, &self->lock);
      self->parked--;
    }
  if (self->quit || self->request != REQUEST_NONE)
    {
      cmd = VR_VCPU_QUIT;
      self->active--;
      g_cond_broadcast (&self->cond);
    }
  g_mutex_unlock (&self->lock);
  return cmd;
}

static gboolean handle_request (gpointer data);

/* Records a guest request (the first one wins) and stops every vCPU. Any thread. */
static void
post_request (VrMachine  *self,
              Request     request,
              uint32_t    value,
              const char *message)
{
  g_mutex_lock (&self->lock);
  if (self->request == REQUEST_NONE && self->vcpus != NULL
      && (self->state == VR_STATE_RUNNING || self->state == VR_STATE_PAUSED))
    {
      g_autoptr (GSource) source = g_idle_source_new ();

      self->request = request;
      self->request_value = value;
      self->request_message = g_strdup (message);
      for (unsigned i = 0; i < self->config.cpus; i++)
        vr_vcpu_kick (self->vcpus[i]);
      g_cond_broadcast (&self->cond);

      g_source_set_callback (source, handle_request, self, NULL);
      g_source_set_static_name (source, "[vireo] guest request");
      g_source_attach (source, vr_iothread_get_context (self->iothread));
    }
  else if (self->vcpus == NULL && self->state != VR_STATE_RUNNING)
    {
      /* No guest is running (a device driven directly, as the unit tests do): the request
       * cannot act, but it is recorded where callers look for the outcome. */
      switch (request)
        {
        case REQUEST_RESET:        self->stop_reason = VR_STOP_RESET; break;
        case REQUEST_TRIPLE_FAULT: self->stop_reason = VR_STOP_TRIPLE_FAULT; break;
        case REQUEST_POWER_OFF:    self->stop_reason = VR_STOP_POWER_OFF; break;
        case REQUEST_DEBUG_EXIT:
          self->stop_reason = VR_STOP_DEBUG_EXIT;
          self->exit_status = (int) ((value << 1) | 1);
          break;
        case REQUEST_ERROR:        self->stop_reason = VR_STOP_GUEST_ERROR; break;
        case REQUEST_NONE:
        default:
          break;
        }
    }
  g_mutex_unlock (&self->lock);
}

static void
vcpu_exit (void       *opaque,
           VrVcpu     *vcpu,
           VrVcpuExit  what,
           const char *message)
{
  VrMachine *self = opaque;

  switch (what)
    {
    case VR_VCPU_EXIT_SHUTDOWN:
      post_request (self, REQUEST_TRIPLE_FAULT, 0, "triple fault");
      break;
    case VR_VCPU_EXIT_SYSTEM_RESET:
      post_request (self, REQUEST_RESET, 0, "reset by the hypervisor interface");
      break;
    case VR_VCPU_EXIT_SYSTEM_SHUTDOWN:
      post_request (self, REQUEST_POWER_OFF, 0, NULL);
      break;
    case VR_VCPU_EXIT_ERROR:
    default:
      {
        g_autofree char *dump = vr_vcpu_dump (vcpu, self->memory);
        g_autofree char *full = g_strdup_printf ("%s\n%s", message, dump);

        g_message ("%s: guest error on vCPU %u: %s", self->config.name,
                   vr_vcpu_get_index (vcpu), full);
        post_request (self, REQUEST_ERROR, 0, full);
      }
      break;
    }
}

void
vr_machine_request_reset (VrMachine  *self,
                          const char *why)
{
  post_request (self, REQUEST_RESET, 0, why);
}

void
vr_machine_request_power_off (VrMachine *self)
{
  post_request (self, REQUEST_POWER_OFF, 0, NULL);
}

void
vr_machine_request_debug_exit (VrMachine *self,
                               uint32_t   value)
{
  post_request (self, REQUEST_DEBUG_EXIT, value, NULL);
}

void
vr_machine_firmware_line (VrMachine  *self,
                          const char *line)
{
  /* SeaBIOS: "No bootable device." or "No bootable device.  Retrying in 5 seconds." */
  if (self->firmware && g_str_has_prefix (line, "No bootable device"))
    {
      g_debug ("%s: the firmware found nothing to boot: %s", self->config.name, line);
      emit_event (self, VR_EVENT_BOOT_FAILED, line);
    }
}

void
vr_machine_log_guest_error (VrMachine  *self,
                            const char *device,
                            const char *format,
                            ...)
{
  g_autofree char *msg = NULL;
  va_list args;

  va_start (args, format);
  msg = g_strdup_vprintf (format, args);
  va_end (args);
  g_message ("%s: %s: %s", self ? self->config.name : "machine", device, msg);
}

/* ---- the KVM VM ------------------------------------------------------------------------- */

/* With @control held and every vCPU thread joined. */
static void
destroy_vm (VrMachine *self)
{
  if (self->vcpus)
    {
      for (unsigned i = 0; i < self->config.cpus; i++)
        vr_vcpu_free (self->vcpus[i]);
      g_clear_pointer (&self->vcpus, g_free);
    }
  if (self->vm_fd >= 0)
    {
      vr_irqchip_lock_for_swap (self->irq);
      vr_memory_detach_vm (self->memory);
      close (self->vm_fd);
      self->vm_fd = -1;
      vr_irqchip_unlock_after_swap (self->irq, -1);
    }
}

static bool
vm_ioctl (VrMachine   *self,
          unsigned long request,
          const void  *arg,
          const char  *what,
          GError     **error)
{
  if (ioctl (self->vm_fd, request, arg) < 0)
    {
      g_set_error (error, VR_ERROR, VR_ERROR_KVM_CAPABILITY, "KVM cannot %s: %s",
                   what, g_strerror (errno));
      return false;
    }
  return true;
}

/* Creates the VM and its vCPUs, resets the devices and loads the kernel (unless @restoring:
 * a snapshot then supplies RAM and every register). @control held. */
static bool
create_vm (VrMachine  *self,
           bool        restoring,
           GError    **error)
{
  struct kvm_pit_config pit = { .flags = KVM_PIT_SPEAKER_DUMMY };
  uint64_t identity = KVM_IDENTITY_MAP_ADDR;
  VrBootCpuState boot_cpu;
  int fd;

  g_assert (self->vm_fd < 0 && self->vcpus == NULL);

  fd = ioctl (self->kvm_fd, KVM_CREATE_VM, 0);
  if (fd < 0)
    {
      g_set_error (error, VR_ERROR, VR_ERROR_KVM_CAPABILITY,
                   "KVM cannot create a virtual machine: %s", g_strerror (errno));
      return false;
    }
  self->vm_fd = fd;

  /* Intel needs these two pages of its own inside the guest's address space: put them at
   * the top of the MMIO hole, below the BIOS area, where nothing else lives. */
  if (!vm_ioctl (self, KVM_SET_TSS_ADDR, (void *) (uintptr_t) KVM_TSS_ADDR,
                 "place its TSS", error)
      || !vm_ioctl (self, KVM_SET_IDENTITY_MAP_ADDR, &identity, "place its identity map", error)
      || !vm_ioctl (self, KVM_CREATE_IRQCHIP, NULL, "create the interrupt controllers", error)
      || !vm_ioctl (self, KVM_CREATE_PIT2, &pit, "create the PIT", error)
      || !vr_irqchip_set_vm (self->irq, fd, error)
      || !vr_memory_map_into_vm (self->memory, fd, error))
    goto fail;

  self->vcpus = g_new0 (VrVcpu *, self->config.cpus);
  for (unsigned i = 0; i < self->config.cpus; i++)
    {
      g_autofree struct kvm_cpuid2 *cpuid = vr_cpuid_for_vcpu (self->cpuid, i, self->config.cpus);

      self->vcpus[i] = vr_vcpu_new (fd, i, self->run_size, cpuid, error);
      if (self->vcpus[i] == NULL)
        goto fail;
    }
  for (unsigned i = 0; i < self->config.cpus; i++)
    if (!vr_vcpu_reset_tsc (self->vcpus[i], error))
      goto fail;

  for (guint i = 0; i < self->devices->len; i++)
    vr_device_reset (g_ptr_array_index (self->devices, i));
  if (restoring)
    return true;

  if (self->firmware)
    {
      /* The vCPUs start at the reset vector, in the ROM: the firmware does the rest. */
      vr_firmware_load_low (self->firmware, self->memory);
      return true;
    }
  vr_memory_write (self->memory, VR_ACPI_TABLES_ADDR,
                   g_bytes_get_data (self->acpi_tables, NULL),
                   g_bytes_get_size (self->acpi_tables));
  if (!vr_boot_image_load (self->boot, self->memory, self->config.cmdline,
                           VR_ACPI_TABLES_ADDR, &boot_cpu, error)
      || !vr_vcpu_set_boot_state (self->vcpus[0], &boot_cpu, error))
    goto fail;
  return true;

fail:
  for (unsigned i = 0; self->vcpus && i < self->config.cpus; i++)
    if (self->vcpus[i] == NULL)
      {
        /* vr_vcpu_free() of a partial array: free what exists. */
        for (unsigned j = 0; j < i; j++)
          vr_vcpu_free (self->vcpus[j]);
        g_clear_pointer (&self->vcpus, g_free);
        break;
      }
  destroy_vm (self);
  return false;
}

/* Starts the vCPU threads; with @paused they park before running any guest code. */
static void
start_vcpus (VrMachine *self,
             bool       paused)
{
  VrVcpuHost host = {
    .pio = self->pio,
    .mmio = self->mmio,
    .wait_for_command = vcpu_wait_for_command,
    .exit = vcpu_exit,
    .opaque = self,
  };

  g_mutex_lock (&self->lock);
  self->quit = false;
  self->pause = paused;
  self->parked = 0;
  self->active = self->config.cpus;
  g_mutex_unlock (&self->lock);

  for (unsigned i = 0; i < self->config.cpus; i++)
    vr_vcpu_start (self->vcpus[i], &host);
}

/* Tells every vCPU thread to quit and joins them. @control held. */
static void
stop_vcpus (VrMachine *self)
{
  if (self->vcpus == NULL)
    return;
  g_mutex_lock (&self->lock);
  self->quit = true;
  g_cond_broadcast (&self->cond);
  for (unsigned i = 0; i < self->config.cpus; i++)
    vr_vcpu_kick (self->vcpus[i]);
  g_mutex_unlock (&self->lock);

  for (unsigned i = 0; i < self->config.cpus; i++)
    vr_vcpu_join (self->vcpus[i]);

  g_mutex_lock (&self->lock);
  self->quit = false;
  self->pause = false;
  g_mutex_unlock (&self->lock);
}

/* Boots: a fresh VM over the existing RAM (cold: RAM discarded first). @control held. */
static bool
boot (VrMachine  *self,
      bool        cold,
      GError    **error)
{
  if (self->boot == NULL && self->firmware == NULL)
    {
      g_set_error (error, VR_ERROR, VR_ERROR_INVALID_CONFIG,
                   "The machine “%s” has nothing to boot: give it a kernel or firmware",
                   self->config.name);
      return false;
    }
  stop_vcpus (self);
  destroy_vm (self);
  if (cold)
    vr_memory_discard (self->memory);
  if (!create_vm (self, false, error))
    return false;

  g_mutex_lock (&self->lock);
  self->request = REQUEST_NONE;
  g_clear_pointer (&self->request_message, g_free);
  self->stop_reason = VR_STOP_NONE;
  self->exit_status = 0;
  g_mutex_unlock (&self->lock);

  start_vcpus (self, false);
  return true;
}

/* Stops everything and records why. @control held. */
static void
power_down (VrMachine    *self,
            VrStopReason  reason,
            int           exit_status)
{
  stop_vcpus (self);
  destroy_vm (self);
  g_mutex_lock (&self->lock);
  self->stop_reason = reason;
  self->exit_status = exit_status;
  self->request = REQUEST_NONE;
  self->state = VR_STATE_STOPPED;
  g_mutex_unlock (&self->lock);
  emit_event (self, VR_EVENT_STATE_CHANGED, NULL);
  emit_event (self, VR_EVENT_POWERED_OFF, NULL);
}

/* On the I/O thread: carries out the guest's request. */
static gboolean
handle_request (gpointer data)
{
  VrMachine *self = data;
  g_autofree char *message = NULL;
  g_autoptr (GError) error = NULL;
  Request request;
  uint32_t value;

  g_mutex_lock (&self->control);
  g_mutex_lock (&self->lock);
  request = self->request;
  value = self->request_value;
  message = g_steal_pointer (&self->request_message);
  g_mutex_unlock (&self->lock);

  if (request == REQUEST_NONE
      || (self->state != VR_STATE_RUNNING && self->state != VR_STATE_PAUSED))
    goto out;

  switch (request)
    {
    case REQUEST_RESET:
    case REQUEST_TRIPLE_FAULT:
      if (self->config.on_reset == VR_RESET_RESTART)
        {
          g_debug ("%s: guest reset (%s)", self->config.name, message ? message : "");
          if (boot (self, false, &error))
            {
              g_mutex_lock (&self->lock);
              self->state = VR_STATE_RUNNING;
              g_mutex_unlock (&self->lock);
              emit_event (self, VR_EVENT_RESET, message);
            }
          else
            {
              emit_event (self, VR_EVENT_GUEST_ERROR, error->message);
              power_down (self, VR_STOP_GUEST_ERROR, 0);
            }
        }
      else
        {
          emit_event (self, VR_EVENT_RESET, message);
          power_down (self, request == REQUEST_RESET ? VR_STOP_RESET : VR_STOP_TRIPLE_FAULT, 0);
        }
      break;
    case REQUEST_POWER_OFF:
      power_down (self, VR_STOP_POWER_OFF, 0);
      break;
    case REQUEST_DEBUG_EXIT:
      power_down (self, VR_STOP_DEBUG_EXIT, (int) ((value << 1) | 1));
      break;
    case REQUEST_ERROR:
      emit_event (self, VR_EVENT_GUEST_ERROR, message);
      power_down (self, VR_STOP_GUEST_ERROR, 0);
      break;
    case REQUEST_NONE:
    default:
      break;
    }

out:
  g_mutex_lock (&self->lock);
  if (self->vcpus == NULL || self->state == VR_STATE_STOPPED)
    self->request = REQUEST_NONE;
  g_mutex_unlock (&self->lock);
  g_mutex_unlock (&self->control);
  return G_SOURCE_REMOVE;
}

/* ---- creation --------------------------------------------------------------------------- */

static int
open_kvm (GError **error)
{
  /* VIREO_KVM_DEVICE lets the tests point at a missing or unusable device. */
  const char *path = g_getenv ("VIREO_KVM_DEVICE");
  int fd = open (path ? path : "/dev/kvm", O_RDWR | O_CLOEXEC);

  if (fd >= 0)
    return fd;
  switch (errno)
    {
    case ENOENT:
    case ENODEV:
    case ENXIO:
      g_set_error (error, VR_ERROR, VR_ERROR_NO_KVM,
                   "This computer has no /dev/kvm. Turn on virtualization (VT-x or AMD-V) in "
                   "the firmware settings and load the kvm_intel or kvm_amd module.");
      break;
    case EACCES:
    case EPERM:
      g_set_error (error, VR_ERROR, VR_ERROR_KVM_PERMISSION,
                   "You may not use /dev/kvm. Add yourself to the “kvm” group "
                   "(sudo usermod -aG kvm $USER), then log out and in again.");
      break;
    default:
      g_set_error (error, VR_ERROR, VR_ERROR_NO_KVM, "Cannot open /dev/kvm: %s",
                   g_strerror (errno));
      break;
    }
  return -1;
}

static bool
check_kvm (VrMachine  *self,
           GError    **error)
{
  static const struct { int cap; const char *name; } required[] = {
    { KVM_CAP_IRQCHIP,        "an in-kernel interrupt controller (KVM_CAP_IRQCHIP)" },
    { KVM_CAP_PIT2,           "an in-kernel PIT (KVM_CAP_PIT2)" },
    { KVM_CAP_USER_MEMORY,    "user memory slots (KVM_CAP_USER_MEMORY)" },
    { KVM_CAP_IMMEDIATE_EXIT, "immediate exits (KVM_CAP_IMMEDIATE_EXIT)" },
    { KVM_CAP_EXT_CPUID,      "extended CPUID (KVM_CAP_EXT_CPUID)" },
    { KVM_CAP_SET_TSS_ADDR,   "KVM_CAP_SET_TSS_ADDR" },
  };
  int version = ioctl (self->kvm_fd, KVM_GET_API_VERSION, 0);
  int max_vcpus;

  if (version != KVM_API_VERSION)
    {
      g_set_error (error, VR_ERROR, VR_ERROR_KVM_CAPABILITY,
                   "/dev/kvm speaks API version %d, Vireo needs %d", version, KVM_API_VERSION);
      return false;
    }
  for (gsize i = 0; i < G_N_ELEMENTS (required); i++)
    if (ioctl (self->kvm_fd, KVM_CHECK_EXTENSION, required[i].cap) <= 0)
      {
        g_set_error (error, VR_ERROR, VR_ERROR_KVM_CAPABILITY,
                     "This kernel's KVM lacks %s, which Vireo needs", required[i].name);
        return false;
      }

  max_vcpus = ioctl (self->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_MAX_VCPUS);
  if (max_vcpus <= 0)
    max_vcpus = ioctl (self->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_NR_VCPUS);
  if (max_vcpus <= 0)
    max_vcpus = 4;
  if (self->config.cpus > (unsigned) max_vcpus)
    {
      g_set_error (error, VR_ERROR, VR_ERROR_INVALID_CONFIG,
                   "This computer's KVM allows at most %d vCPUs per machine, not %u",
                   max_vcpus, self->config.cpus);
      return false;
    }

  self->run_size = ioctl (self->kvm_fd, KVM_GET_VCPU_MMAP_SIZE, 0);
  if (self->run_size <= 0)
    {
      g_set_error (error, VR_ERROR, VR_ERROR_KVM_CAPABILITY,
                   "KVM_GET_VCPU_MMAP_SIZE failed: %s", g_strerror (errno));
      return false;
    }
  return true;
}

static bool
check_config (const VrMachineConfig  *config,
              GError                **error)
{
  uint64_t host_ram = (uint64_t) sysconf (_SC_PHYS_PAGES) * (uint64_t) sysconf (_SC_PAGESIZE);

  if (config->cpus < 1 || config->cpus > VR_MAX_CPUS)
    {
      g_set_error (error, VR_ERROR, VR_ERROR_INVALID_CONFIG,
                   "A machine has 1 to %d vCPUs, not %u", VR_MAX_CPUS, config->cpus);
      return false;
    }
  if (config->memory < VR_MIN_MEMORY || (config->memory & 0xfff) != 0)
    {
      g_set_error (error, VR_ERROR, VR_ERROR_INVALID_CONFIG,
                   "A machine needs at least 2 MiB of memory, in whole 4 KiB pages");
      return false;
    }
  if (config->memory > VR_MAX_MEMORY || (host_ram > 0 && config->memory > host_ram))
    {
      g_set_error (error, VR_ERROR, VR_ERROR_INVALID_CONFIG,
                   "The machine asks for %" G_GUINT64_FORMAT " MiB of memory but this computer "
                   "has %" G_GUINT64_FORMAT " MiB", config->memory >> 20, host_ram >> 20);
      return false;
    }
  if (config->serial == VR_SERIAL_FILE && (config->serial_path == NULL || !*config->serial_path))
    {
      g_set_error (error, VR_ERROR, VR_ERROR_INVALID_CONFIG,
                   "A serial log file needs a path");
      return false;
    }
  if (config->console == VR_SERIAL_FILE
      && (config->console_path == NULL || !*config->console_path))
    {
      g_set_error (error, VR_ERROR, VR_ERROR_INVALID_CONFIG,
                   "A console log file needs a path");
      return false;
    }
  if (config->n_disks > VR_MAX_DISKS
      || (config->nics && g_strv_length (config->nics) > VR_MAX_NICS))
    {
      g_set_error (error, VR_ERROR, VR_ERROR_INVALID_CONFIG,
                   "A machine has at most %d disks and %d network cards", VR_MAX_DISKS,
                   VR_MAX_NICS);
      return false;
    }
  for (unsigned i = 0; i < VR_MAX_BOOT_DEVICES && config->boot_order[i] != VR_BOOT_DEVICE_END;
       i++)
    if (config->boot_order[i] != VR_BOOT_DEVICE_CDROM
        && config->boot_order[i] != VR_BOOT_DEVICE_DISK)
      {
        g_set_error (error, VR_ERROR, VR_ERROR_INVALID_CONFIG,
                     "Boot device %u is not a CD-ROM or a disk", i + 1);
        return false;
      }
  if (config->firmware != NULL && *config->firmware == '\0')
    {
      g_set_error (error, VR_ERROR, VR_ERROR_INVALID_CONFIG, "The firmware needs a path");
      return false;
    }
  if (config->firmware != NULL && config->kernel != NULL)
    {
      g_set_error (error, VR_ERROR, VR_ERROR_INVALID_CONFIG,
                   "A machine boots either a kernel or its firmware, not both");
      return false;
    }
  for (unsigned i = 0; i < config->n_disks; i++)
    if (config->disks[i].path == NULL || !*config->disks[i].path)
      {
        g_set_error (error, VR_ERROR, VR_ERROR_INVALID_CONFIG, "Disk %u has no image file",
                     i + 1);
        return false;
      }
  return true;
}

static bool
add_device (VrMachine  *self,
            VrDevice   *dev)
{
  if (dev == NULL)
    return false;
  g_ptr_array_add (self->devices, dev);
  return true;
}

/* The next PCI slot and the host resources a virtio device needs there. */
static bool
virtio_host (VrMachine    *self,
             VrVirtioHost *host,
             GError      **error)
{
  if (self->next_slot >= 32)
    {
      g_set_error (error, VR_ERROR, VR_ERROR_INVALID_CONFIG,
                   "Too many devices: the PCI bus has 31 slots");
      return false;
    }
  *host = (VrVirtioHost) {
    .memory = self->memory,
    .irq = self->irq,
    .pci_host = self->pci_host,
    .io_context = vr_iothread_get_context (self->iothread),
    .slot = self->next_slot,
    .gsi = VR_PCI_INTX_GSI (self->next_slot, 0),
  };
  self->next_slot++;
  return true;
}

/* The guest ejected the CD (any thread, no lock of ours held). */
static void
cdrom_changed (gpointer data)
{
  VrMachine *self = data;

  emit_event (self, VR_EVENT_CDROM_CHANGED, NULL);
}

static bool
create_virtio_devices (VrMachine  *self,
                       GError    **error)
{
  VrVirtioHost host;

  self->next_slot = self->firmware ? FIRMWARE_FIRST_SLOT : 1;
  /* The CD-ROM drive first: an installer's boot device gets the lowest slot. */
  if (self->config.cdrom_drive || self->config.cdrom)
    {
      if (!virtio_host (self, &host, error)
          || !add_device (self, (self->cdrom = vr_virtio_scsi_new (&host, self->config.cdrom,
                                                                   cdrom_changed, self,
                                                                   error))))
        return false;
      self->cdrom_slot = host.slot;
    }
  for (unsigned i = 0; i < self->config.n_disks; i++)
    {
      const VrDiskConfig *dc = &self->config.disks[i];
      VrDiskFormat format;
      VrDisk *disk;

      if (!vr_disk_format_from_string (dc->format ? dc->format : "raw", &format, error))
        return false;
      disk = vr_disk_open (dc->path, format, dc->readonly ? VR_DISK_OPEN_READONLY : 0, error);
      if (disk == NULL || !virtio_host (self, &host, error))
        {
          vr_disk_close (disk);
          return false;
        }
      if (!add_device (self, vr_virtio_blk_new (&host, disk, dc->serial, error)))
        return false;
      self->disk_slots[i] = host.slot;
      g_ptr_array_add (self->disks, disk);
      g_ptr_array_add (self->blk_devices, g_ptr_array_index (self->devices,
                                                             self->devices->len - 1));
    }
  for (unsigned i = 0; self->config.nics && self->config.nics[i]; i++)
    {
      g_auto (VrNetConfig) nc = { 0 };
      VrNetBackend *backend;

      vr_net_config_init (&nc);
      if (!vr_net_config_parse (&nc, self->config.nics[i], error))
        return false;
      if (nc.kind == VR_NET_NONE)
        continue;
      if (!virtio_host (self, &host, error))
        return false;
      /* Each further card gets the next MAC address, as QEMU users expect. */
      nc.mac[5] = (uint8_t) (nc.mac[5] + i);
      backend = vr_net_backend_new (&nc, host.io_context, error);
      if (backend == NULL
          || !add_device (self, vr_virtio_net_new (&host, backend, nc.mac, error)))
        return false;
      g_ptr_array_add (self->net_devices, g_ptr_array_index (self->devices,
                                                             self->devices->len - 1));
    }
  if (self->config.rng)
    {
      if (!virtio_host (self, &host, error) || !add_device (self, vr_virtio_rng_new (&host, error)))
        return false;
    }
  if (self->config.console != VR_SERIAL_NONE)
    {
      self->console_chr = vr_chardev_new (self->config.console, self->config.console_path, error);
      if (self->console_chr == NULL || !virtio_host (self, &host, error)
          || !add_device (self, vr_virtio_console_new (&host, self->console_chr, error)))
        return false;
    }
  if (self->config.input)
    {
      if (!virtio_host (self, &host, error)
          || !add_device (self, (self->keyboard = vr_virtio_input_new (&host,
                                                                       VR_VIRTIO_INPUT_KEYBOARD,
                                                                       error)))
          || !virtio_host (self, &host, error)
          || !add_device (self, (self->tablet = vr_virtio_input_new (&host,
                                                                     VR_VIRTIO_INPUT_TABLET,
                                                                     error))))
        return false;
    }
  return true;
}

/* The display card's BARs, assigned at creation so that boot code knows the framebuffer's
 * address: the bottom of the PCI MMIO window (the guest may move them). */
#define BOCHS_FB_ADDR    VR_MMIO_HOLE_START
#define BOCHS_MMIO_ADDR  (VR_MMIO_HOLE_START + VR_BOCHS_FB_SIZE)
#define BOOT_FB_WIDTH    1024
#define BOOT_FB_HEIGHT   768

static bool
create_display (VrMachine  *self,
                GError    **error)
{
  g_autoptr (GBytes) rom = NULL;
  VrVirtioHost host;

  if (self->config.display == VR_DISPLAY_DEVICE_NONE)
    return true;

  self->display = vr_display_new (vr_iothread_get_context (self->iothread));
  if (self->config.display == VR_DISPLAY_DEVICE_VIRTIO_GPU)
    {
      if (!virtio_host (self, &host, error)
          || !add_device (self, vr_virtio_gpu_new (&host, self->display, error)))
        return false;
    }
  /* The firmware's screen: SeaBIOS runs the display's option ROM (SeaVGABIOS for the
   * bochs-display). Without it the firmware still boots, only silently. */
  if (self->firmware)
    {
      g_autofree char *dir = g_path_get_dirname (self->config.firmware);
      g_autofree char *path = self->config.vga_rom ? g_strdup (self->config.vga_rom)
                                                   : g_build_filename (dir, VR_SEABIOS_VGA_ROM,
                                                                       NULL);
      g_autoptr (GError) local_error = NULL;
      char *data;
      gsize len;

      if (g_file_get_contents (path, &data, &len, &local_error))
        rom = g_bytes_new_take (data, len);
      else
        g_message ("%s: no option ROM for the display, the firmware shows nothing: %s",
                   self->config.name, local_error->message);
    }
  if (!virtio_host (self, &host, error)
      || !add_device (self, (self->bochs = vr_bochs_display_new (self->pci_host, self->memory,
                                                                 self->display, self,
                                                                 host.slot, BOCHS_FB_ADDR,
                                                                 BOCHS_MMIO_ADDR, rom,
                                                                 error))))
    return false;

  /* A directly booted Linux finds the framebuffer through screen_info (simplefb), already
   * switched on. */
  if (self->boot && !self->firmware && vr_boot_image_get_protocol (self->boot) == VR_BOOT_LINUX)
    {
      VrBootFramebuffer fb = {
        .addr = BOCHS_FB_ADDR,
        .size = VR_BOCHS_FB_SIZE,
        .width = BOOT_FB_WIDTH,
        .height = BOOT_FB_HEIGHT,
        .stride = BOOT_FB_WIDTH * 4,
      };

      vr_boot_image_set_framebuffer (self->boot, &fb);
      vr_bochs_display_set_boot_mode (self->bochs, BOOT_FB_WIDTH, BOOT_FB_HEIGHT);
    }
  return true;
}

/* The firmware's boot order: the configuration's, or CD-ROM then disks when it names none.
 * VR_BOOT_DEVICE_END-terminated within VR_MAX_BOOT_DEVICES entries. */
static const VrBootDevice *
firmware_boot_order (const VrMachineConfig *config)
{
  static const VrBootDevice default_order[VR_MAX_BOOT_DEVICES] = {
    VR_BOOT_DEVICE_CDROM, VR_BOOT_DEVICE_DISK, VR_BOOT_DEVICE_END,
  };

  return config->boot_order[0] == VR_BOOT_DEVICE_END ? default_order : config->boot_order;
}

static void
add_file_bytes (VrDevice   *fw_cfg,
                const char *name,
                GBytes     *bytes)
{
  vr_fw_cfg_add_file (fw_cfg, name, g_bytes_get_data (bytes, NULL), g_bytes_get_size (bytes));
}

/* What the firmware reads through fw_cfg besides the basics (see QEMU's
 * docs/specs/fw_cfg.rst and SeaBIOS's src/fw/paravirt.c). */
static void
add_firmware_files (VrMachine *self,
                    VrDevice  *fw_cfg)
{
  g_autoptr (GString) order = g_string_new (NULL);
  const VrBootDevice *boot = firmware_boot_order (&self->config);
  uint64_t low = vr_memory_low_size (self->memory), high = vr_memory_high_size (self->memory);
  const uint64_t ram[2][2] = { { 0, low }, { VR_4GIB, high } };
  uint8_t e820[2][20] = { { 0 } };
  unsigned n_e820 = 0;
  uint64_t reserved_end = VR_4GIB + high;
  uint32_t boot_fail_wait = GUINT32_TO_LE (FIRMWARE_BOOT_FAIL_WAIT_MS);
  uint16_t no = 0;

  /* The boot order as OpenFirmware device paths, one per line, as QEMU writes them; SeaBIOS
   * matches each device it finds against them by prefix, with wildcards for the node names
   * (the PCI slot of a virtio-blk disk; the slot, channel 0 and target 0, LUN 0 of the SCSI
   * CD-ROM). */
  for (unsigned i = 0; i < VR_MAX_BOOT_DEVICES && boot[i] != VR_BOOT_DEVICE_END; i++)
    {
      if (boot[i] == VR_BOOT_DEVICE_CDROM && self->cdrom)
        g_string_append_printf (order, "/pci@i0cf8/scsi@%x/channel@0/disk@0,0\n",
                                self->cdrom_slot);
      else if (boot[i] == VR_BOOT_DEVICE_DISK)
        for (unsigned d = 0; d < self->config.n_disks; d++)
          g_string_append_printf (order, "/pci@i0cf8/scsi@%x/disk@0,0\n", self->disk_slots[d]);
    }
  /* Only those: no attempts at a floppy or anything else after them (each costs seconds). */
  g_string_append (order, "HALT\n");
  vr_fw_cfg_add_file (fw_cfg, "bootorder", order->str, order->len + 1);

  /* RAM only, { le64 address, le64 length, le32 type } each: the firmware adds its own
   * reservations (EBDA, BIOS area). */
  for (unsigned i = 0; i < G_N_ELEMENTS (ram); i++)
    if (ram[i][1] > 0)
      {
        uint64_t v[2] = { GUINT64_TO_LE (ram[i][0]), GUINT64_TO_LE (ram[i][1]) };
        uint32_t type = GUINT32_TO_LE (VR_E820_RAM);

        memcpy (e820[n_e820], v, 16);
        memcpy (e820[n_e820++] + 16, &type, 4);
      }
  vr_fw_cfg_add_file (fw_cfg, "etc/e820", e820, 20 * n_e820);

  /* 64-bit PCI BARs go above RAM, on a 1 GiB boundary. */
  reserved_end = GUINT64_TO_LE ((reserved_end + (1ull << 30) - 1) & ~((1ull << 30) - 1));
  vr_fw_cfg_add_file (fw_cfg, "etc/reserved-memory-end", &reserved_end, sizeof reserved_end);
  /* "No bootable device. Retrying in 5 seconds." rather than waiting a minute. */
  vr_fw_cfg_add_file (fw_cfg, "etc/boot-fail-wait", &boot_fail_wait, sizeof boot_fail_wait);
  /* No "Press ESC for boot menu" pause, as on QEMU by default. */
  vr_fw_cfg_add_file (fw_cfg, "etc/show-boot-menu", &no, sizeof no);

  /* Our ACPI tables (the firmware places and links them: etc/table-loader) and SMBIOS. */
  {
    VrAcpiConfig acpi = { .ncpus = self->config.cpus };
    g_autoptr (GBytes) rsdp = NULL, tables = NULL, loader = NULL, anchor = NULL;
    g_autoptr (GBytes) smbios = NULL;
    VrSmbiosConfig sm = {
      .ncpus = self->config.cpus,
      .ram_low = low,
      .ram_high = high,
      .uuid = self->config.uuid,
      .firmware_size = vr_firmware_get_size (self->firmware),
    };

    if (vr_acpi_build_fw_cfg (&acpi, &rsdp, &tables, &loader))
      {
        add_file_bytes (fw_cfg, VR_ACPI_FW_CFG_RSDP, rsdp);
        add_file_bytes (fw_cfg, VR_ACPI_FW_CFG_TABLES, tables);
        add_file_bytes (fw_cfg, VR_ACPI_FW_CFG_LOADER, loader);
      }
    smbios = vr_smbios_build (&sm, &anchor);
    if (smbios && anchor)
      {
        add_file_bytes (fw_cfg, VR_SMBIOS_FW_CFG_TABLES, smbios);
        add_file_bytes (fw_cfg, VR_SMBIOS_FW_CFG_ANCHOR, anchor);
      }
  }
}

/* The CMOS bytes SeaBIOS (as the PC BIOSes before it) reads besides the memory sizes: the
 * boot order by device class (0x3d: first and second, 0x38 high nibble: third; 2 = hard
 * disk, 3 = CD-ROM; bit 0 of 0x38: no floppy signature check) and the vCPU count - 1. */
static void
set_firmware_nvram (VrMachine *self,
                    VrDevice  *rtc)
{
  const VrBootDevice *boot = firmware_boot_order (&self->config);
  uint8_t classes[3] = { 0 };

  for (unsigned i = 0; i < G_N_ELEMENTS (classes) && boot[i] != VR_BOOT_DEVICE_END; i++)
    classes[i] = boot[i] == VR_BOOT_DEVICE_CDROM ? 3 : 2;
  vr_rtc_set_nvram (rtc, 0x3d, (uint8_t) (classes[0] | (classes[1] << 4)));
  vr_rtc_set_nvram (rtc, 0x38, (uint8_t) ((classes[2] << 4) | 0x01));
  vr_rtc_set_nvram (rtc, 0x5f, (uint8_t) (self->config.cpus - 1));
}

static bool
create_devices (VrMachine  *self,
                GError    **error)
{
  GMainContext *io = vr_iothread_get_context (self->iothread);
  VrAcpiConfig acpi = { .ncpus = self->config.cpus };
  VrDevice *fw_cfg, *pci, *rtc;
  uint64_t ram = self->config.memory;
  uint16_t cpus = (uint16_t) self->config.cpus;

  if (self->config.serial != VR_SERIAL_NONE)
    {
      self->serial_chr = vr_chardev_new (self->config.serial, self->config.serial_path, error);
      if (self->serial_chr == NULL)
        return false;
    }

  if (!add_device (self, vr_serial_new (self->pio, VR_COM1_BASE, self->irq, VR_COM1_IRQ,
                                        self->serial_chr, io, error))
      || !add_device (self, (self->i8042 = vr_i8042_new (self->pio, self->irq, self, error)))
      || !add_device (self, (rtc = vr_rtc_new (self->pio, self->irq, self->memory, io, error)))
      || !add_device (self, vr_debug_exit_new (self->pio, self, error))
      || !add_device (self, (self->pci_host = pci = vr_pci_host_new (self->pio, self, error)))
      || !vr_pci_host_attach_mmio (pci, self->mmio, VR_MMIO_HOLE_START,
                                   VR_IOAPIC_ADDR - VR_MMIO_HOLE_START, error)
      || !add_device (self, vr_pc_misc_new (self->pio, self, error))
      || !add_device (self, (self->acpi_pm = vr_acpi_pm_new (self->pio, self->irq, self, error)))
      || !add_device (self, (fw_cfg = vr_fw_cfg_new (self->pio, self->memory, error))))
    return false;

  if (self->firmware)
    {
      /* The PC chipset SeaBIOS looks for: QEMU's subsystem ID on the host bridge, the
       * PIIX3/PIIX4 functions in slot 1. */
      vr_pci_host_set_bridge_subsystem (pci, 0x1af4, 0x1100);
      if (!add_device (self, vr_piix_new (pci, FIRMWARE_CHIPSET_SLOT, error)))
        return false;
    }
  if (!create_virtio_devices (self, error) || !create_display (self, error))
    return false;
  if (!vr_bus_register (self->pio, VR_SNAPSHOT_PORT, 1, snapshot_port_io, self, "snapshot",
                        error))
    return false;

  vr_fw_cfg_add_item (fw_cfg, 0x03, &ram, sizeof ram);    /* FW_CFG_RAM_SIZE */
  vr_fw_cfg_add_item (fw_cfg, 0x05, &cpus, sizeof cpus);  /* FW_CFG_NB_CPUS */
  vr_fw_cfg_add_item (fw_cfg, 0x0f, &cpus, sizeof cpus);  /* FW_CFG_MAX_CPUS */
  if (self->firmware)
    {
      add_firmware_files (self, fw_cfg);
      set_firmware_nvram (self, rtc);
    }

  self->acpi_tables = vr_acpi_build (&acpi, VR_ACPI_TABLES_ADDR);
  if (g_bytes_get_size (self->acpi_tables) > VR_ACPI_TABLES_SIZE)
    {
      g_set_error (error, VR_ERROR, VR_ERROR_INVALID_CONFIG,
                   "The ACPI tables for %u vCPUs do not fit the BIOS area", self->config.cpus);
      return false;
    }
  return true;
}

VrMachine *
vr_machine_new (const VrMachineConfig  *config,
                GError                **error)
{
  VrMachine *self;

  g_return_val_if_fail (config != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  if (!check_config (config, error))
    return NULL;

  self = g_new0 (VrMachine, 1);
  self->ref_count = 1;
  self->kvm_fd = -1;
  self->vm_fd = -1;
  config_copy (&self->config, config);
  g_mutex_init (&self->control);
  g_mutex_init (&self->lock);
  g_cond_init (&self->cond);
  self->state = VR_STATE_CREATED;
  self->devices = g_ptr_array_new ();
  self->disks = g_ptr_array_new ();
  self->blk_devices = g_ptr_array_new ();
  self->net_devices = g_ptr_array_new ();
  self->pio = vr_bus_new ("port I/O");
  self->mmio = vr_bus_new ("MMIO");
  self->irq = vr_irqchip_new ();
  self->event_context = g_main_context_ref_thread_default ();

  self->kvm_fd = open_kvm (error);
  if (self->kvm_fd < 0 || !check_kvm (self, error))
    goto fail;
  self->cpuid = vr_cpuid_get_supported (self->kvm_fd, self->config.cpuid_mask, error);
  if (self->cpuid == NULL)
    goto fail;
  self->memory = vr_memory_new (self->config.memory, error);
  if (self->memory == NULL)
    goto fail;
  if (self->config.kernel != NULL)
    {
      self->boot = vr_boot_image_new (self->config.kernel, self->config.initrd,
                                      self->config.memory, error);
      if (self->boot == NULL)
        goto fail;
    }
  if (self->config.firmware != NULL)
    {
      self->firmware = vr_firmware_new (self->config.firmware, error);
      if (self->firmware == NULL || !vr_firmware_map (self->firmware, self->memory, error))
        goto fail;
    }
  self->iothread = vr_iothread_new ("vireo-io");
  if (!create_devices (self, error))
    goto fail;
  self->input = vr_input_new (self->i8042, self->keyboard, self->tablet);
  return self;

fail:
  vr_machine_free (self);
  return NULL;
}

/* ---- lifecycle -------------------------------------------------------------------------- */

/* With @control held: is the machine in one of @allowed (a mask of 1 << VrMachineState)? */
static bool
require_state (VrMachine   *self,
               unsigned     allowed,
               const char  *complaint,
               GError     **error)
{
  if (allowed & (1u << self->state))
    return true;
  g_set_error (error, VR_ERROR, VR_ERROR_STATE, "The machine “%s” %s", self->config.name,
               complaint);
  return false;
}

#define STATE_BIT(s) (1u << (s))

bool
vr_machine_start (VrMachine  *self,
                  GError    **error)
{
  bool ok = false;

  g_return_val_if_fail (self != NULL, false);

  g_mutex_lock (&self->control);
  if (!require_state (self, STATE_BIT (VR_STATE_CREATED) | STATE_BIT (VR_STATE_STOPPED),
                      "is already running", error))
    goto out;
  if (!boot (self, self->state == VR_STATE_STOPPED, error))
    goto out;
  set_state (self, VR_STATE_RUNNING);
  ok = true;

out:
  g_mutex_unlock (&self->control);
  return ok;
}

bool
vr_machine_pause (VrMachine  *self,
                  GError    **error)
{
  bool ok = false;

  g_return_val_if_fail (self != NULL, false);

  g_mutex_lock (&self->control);
  if (!require_state (self, STATE_BIT (VR_STATE_RUNNING), "is not running", error))
    goto out;
  g_mutex_lock (&self->lock);
  self->pause = true;
  for (unsigned i = 0; i < self->config.cpus; i++)
    vr_vcpu_kick (self->vcpus[i]);
  /* Every vCPU thread is parked, or has left because of a guest request. */
  while (self->parked < self->active)
    g_cond_wait (&self->cond, &self->lock);
  self->state = VR_STATE_PAUSED;
  g_mutex_unlock (&self->lock);
  emit_event (self, VR_EVENT_STATE_CHANGED, NULL);
  ok = true;

out:
  g_mutex_unlock (&self->control);
  return ok;
}

bool
vr_machine_resume (VrMachine  *self,
                   GError    **error)
{
  bool ok = false;

  g_return_val_if_fail (self != NULL, false);

  g_mutex_lock (&self->control);
  if (!require_state (self, STATE_BIT (VR_STATE_PAUSED), "is not paused", error))
    goto out;
  g_mutex_lock (&self->lock);
  self->pause = false;
  self->state = VR_STATE_RUNNING;
  g_cond_broadcast (&self->cond);
  g_mutex_unlock (&self->lock);
  emit_event (self, VR_EVENT_STATE_CHANGED, NULL);
  ok = true;

out:
  g_mutex_unlock (&self->control);
  return ok;
}

bool
vr_machine_reset (VrMachine  *self,
                  GError    **error)
{
  bool ok = false;

  g_return_val_if_fail (self != NULL, false);

  g_mutex_lock (&self->control);
  if (!require_state (self, STATE_BIT (VR_STATE_RUNNING) | STATE_BIT (VR_STATE_PAUSED),
                      "is not running", error))
    goto out;
  if (!boot (self, false, error))
    {
      power_down (self, VR_STOP_GUEST_ERROR, 0);
      goto out;
    }
  set_state (self, VR_STATE_RUNNING);
  emit_event (self, VR_EVENT_RESET, "reset by the user");
  ok = true;

out:
  g_mutex_unlock (&self->control);
  return ok;
}

void
vr_machine_stop (VrMachine *self)
{
  g_return_if_fail (self != NULL);

  g_mutex_lock (&self->control);
  if (self->state == VR_STATE_RUNNING || self->state == VR_STATE_PAUSED)
    power_down (self, VR_STOP_REQUESTED, 0);
  g_mutex_unlock (&self->control);
}

void
vr_machine_power_button (VrMachine *self)
{
  g_return_if_fail (self != NULL);

  if (self->acpi_pm)
    vr_acpi_pm_power_button (self->acpi_pm);
}

VrMachineState
vr_machine_get_state (VrMachine *self)
{
  VrMachineState state;

  g_mutex_lock (&self->lock);
  state = self->state;
  g_mutex_unlock (&self->lock);
  return state;
}

VrStopReason
vr_machine_get_stop_reason (VrMachine *self)
{
  VrStopReason reason;

  g_mutex_lock (&self->lock);
  reason = self->stop_reason;
  g_mutex_unlock (&self->lock);
  return reason;
}

int
vr_machine_get_exit_status (VrMachine *self)
{
  int status;

  g_mutex_lock (&self->lock);
  status = self->exit_status;
  g_mutex_unlock (&self->lock);
  return status;
}

const char *
vr_machine_get_serial_pty (VrMachine *self)
{
  return self->serial_chr ? vr_chardev_get_pty_path (self->serial_chr) : NULL;
}

VrDisplay *
vr_machine_get_display (VrMachine *self)
{
  g_return_val_if_fail (self != NULL, NULL);
  return self->display;
}

const VrMachineConfig *
vr_machine_get_config (VrMachine *self)
{
  return &self->config;
}

unsigned
vr_machine_get_vcpu_times (VrMachine *self,
                           uint64_t  *times_ns,
                           unsigned   n)
{
  unsigned count = 0;

  g_return_val_if_fail (self != NULL, 0);

  /* @control keeps the vCPUs from being freed; a UI polling once a second never waits long
   * (a transition in progress just makes this sample empty). */
  if (!g_mutex_trylock (&self->control))
    return 0;
  if (self->vcpus != NULL)
    {
      count = self->config.cpus;
      for (unsigned i = 0; i < MIN (n, count); i++)
        times_ns[i] = vr_vcpu_get_cpu_time (self->vcpus[i]);
    }
  g_mutex_unlock (&self->control);
  return count;
}

uint64_t
vr_machine_get_memory_used (VrMachine *self)
{
  g_return_val_if_fail (self != NULL, 0);

  if (self->memory == NULL)
    return 0;
  return vr_memory_get_used (self->memory);
}

void
vr_machine_get_io_stats (VrMachine *self,
                         VrIoStats *stats)
{
  g_return_if_fail (self != NULL && stats != NULL);

  /* The device lists never change after creation. */
  memset (stats, 0, sizeof *stats);
  for (guint i = 0; i < self->blk_devices->len; i++)
    vr_virtio_blk_get_stats (g_ptr_array_index (self->blk_devices, i), stats);
  for (guint i = 0; i < self->net_devices->len; i++)
    vr_virtio_net_get_stats (g_ptr_array_index (self->net_devices, i), stats);
}

char *
vr_machine_dump_cpus (VrMachine *self)
{
  GString *s = g_string_new (NULL);
  bool was_running;

  g_return_val_if_fail (self != NULL, NULL);

  was_running = vr_machine_get_state (self) == VR_STATE_RUNNING;
  if (was_running && !vr_machine_pause (self, NULL))
    was_running = false;
  g_mutex_lock (&self->control);
  if (self->vcpus == NULL)
    g_string_append (s, "no vCPUs exist: the machine is not running\n");
  for (unsigned i = 0; self->vcpus && i < self->config.cpus; i++)
    {
      g_autofree char *dump = vr_vcpu_dump (self->vcpus[i], self->memory);
      struct kvm_mp_state mp = { 0 };

      ioctl (vr_vcpu_get_fd (self->vcpus[i]), KVM_GET_MP_STATE, &mp);
      g_string_append_printf (s, "%s MP state %u\n", dump, mp.mp_state);
    }
  g_mutex_unlock (&self->control);
  if (was_running)
    vr_machine_resume (self, NULL);
  return g_string_free (s, FALSE);
}

/* ---- snapshots ---------------------------------------------------------------------------- */

/*
 * Save and restore run on the I/O thread, under @control: no device handler that lives there
 * (ioeventfd kicks, backends, timers, guest requests) runs meanwhile, and a guest request
 * queued there waits for the snapshot instead of deadlocking with it.
 */

typedef struct
{
  VrMachine      *self;
  const char     *dir;
  const char     *disk_id;
  VrRestoreFlags  flags;
  bool          (*func) (VrMachine *self, gpointer call, GError **error);
  bool            ok;
  GError         *error;
  GMutex          lock;
  GCond           cond;
  bool            done;
} SnapshotCall;

static gboolean
snapshot_call_run (gpointer data)
{
  SnapshotCall *call = data;
  bool ok;

  g_mutex_lock (&call->self->control);
  ok = call->func (call->self, call, &call->error);
  g_mutex_unlock (&call->self->control);

  g_mutex_lock (&call->lock);
  call->ok = ok;
  call->done = true;
  g_cond_signal (&call->cond);
  g_mutex_unlock (&call->lock);
  return G_SOURCE_REMOVE;
}

static bool
run_snapshot_call (SnapshotCall  *call,
                   GError       **error)
{
  GMainContext *io = vr_iothread_get_context (call->self->iothread);

  g_mutex_init (&call->lock);
  g_cond_init (&call->cond);
  if (g_main_context_is_owner (io))
    snapshot_call_run (call);
  else
    {
      g_autoptr (GSource) source = g_idle_source_new ();

      g_source_set_priority (source, G_PRIORITY_HIGH);
      g_source_set_callback (source, snapshot_call_run, call, NULL);
      g_source_set_static_name (source, "[vireo] snapshot");
      g_source_attach (source, io);
      g_mutex_lock (&call->lock);
      while (!call->done)
        g_cond_wait (&call->cond, &call->lock);
      g_mutex_unlock (&call->lock);
    }
  g_mutex_clear (&call->lock);
  g_cond_clear (&call->cond);
  if (!call->ok)
    g_propagate_error (error, call->error);
  return call->ok;
}

/* What a snapshot must match: memory, vCPUs, devices in order, disks. */
static char *
machine_layout (VrMachine *self)
{
  GString *s = g_string_new ("layout 1");

  g_string_append_printf (s, "; memory %" G_GUINT64_FORMAT " MiB; %u vCPUs; devices",
                          self->config.memory >> 20, self->config.cpus);
  for (guint i = 0; i < self->devices->len; i++)
    {
      VrDevice *dev = g_ptr_array_index (self->devices, i);

      g_string_append_printf (s, "%s %s", i ? "," : "", dev->ops->name);
    }
  for (guint i = 0; i < self->disks->len; i++)
    g_string_append_printf (s, "; disk %u %s%s", i,
                            vr_disk_format_to_string (vr_disk_get_format (
                              g_ptr_array_index (self->disks, i))),
                            vr_disk_is_readonly (g_ptr_array_index (self->disks, i))
                              ? " read-only" : "");
  return g_string_free (s, FALSE);
}

/* Parks every vCPU (settled at an instruction boundary). @control held. */
static void
park_vcpus (VrMachine *self)
{
  g_mutex_lock (&self->lock);
  self->pause = true;
  for (unsigned i = 0; i < self->config.cpus; i++)
    vr_vcpu_kick (self->vcpus[i]);
  while (self->parked < self->active)
    g_cond_wait (&self->cond, &self->lock);
  g_mutex_unlock (&self->lock);
}

static void
unpark_vcpus (VrMachine *self)
{
  g_mutex_lock (&self->lock);
  self->pause = false;
  g_cond_broadcast (&self->cond);
  g_mutex_unlock (&self->lock);
}

static void
quiesce_devices (VrMachine *self)
{
  for (guint i = 0; i < self->devices->len; i++)
    {
      VrDevice *dev = g_ptr_array_index (self->devices, i);

      if (dev->ops->quiesce)
        dev->ops->quiesce (dev);
    }
}

static void
resume_devices (VrMachine *self)
{
  for (guint i = 0; i < self->devices->len; i++)
    {
      VrDevice *dev = g_ptr_array_index (self->devices, i);

      if (dev->ops->resume)
        dev->ops->resume (dev);
    }
}

static bool
kvm_vm_get (VrMachine     *self,
            unsigned long  request,
            void          *arg,
            const char    *what,
            GError       **error)
{
  if (ioctl (self->vm_fd, request, arg) >= 0)
    return true;
  g_set_error (error, VR_ERROR, VR_ERROR_FAILED, "KVM cannot %s: %s", what, g_strerror (errno));
  return false;
}

static GVariant *
bytes_v (const void *data,
         size_t      len)
{
  return g_variant_new_fixed_array (G_VARIANT_TYPE_BYTE, data, len, 1);
}

/* The VM-wide state: the PICs and the IOAPIC, the PIT, the KVM clock. */
static GVariant *
save_vm_state (VrMachine  *self,
               uint64_t   *clock_ns,
               GError    **error)
{
  g_auto (GVariantBuilder) b = G_VARIANT_BUILDER_INIT (G_VARIANT_TYPE_VARDICT);
  static const char *const chips[] = { "pic-master", "pic-slave", "ioapic" };
  struct kvm_pit_state2 pit;
  struct kvm_clock_data clock = { 0 };

  for (unsigned i = 0; i < G_N_ELEMENTS (chips); i++)
    {
      struct kvm_irqchip chip = { .chip_id = i };

      if (!kvm_vm_get (self, KVM_GET_IRQCHIP, &chip, "read the interrupt controllers", error))
        return NULL;
      g_variant_builder_add (&b, "{sv}", chips[i], bytes_v (&chip, sizeof chip));
    }
  if (!kvm_vm_get (self, KVM_GET_PIT2, &pit, "read the PIT", error)
      || !kvm_vm_get (self, KVM_GET_CLOCK, &clock, "read the clock", error))
    return NULL;
  g_variant_builder_add (&b, "{sv}", "pit", bytes_v (&pit, sizeof pit));
  g_variant_builder_add (&b, "{sv}", "clock", g_variant_new_uint64 (clock.clock));
  *clock_ns = clock.clock;
  return g_variant_builder_end (&b);
}

static bool
lookup_vm_bytes (GVariant   *dict,
                 const char *key,
                 void       *out,
                 size_t      size,
                 GError    **error)
{
  g_autoptr (GVariant) v = g_variant_lookup_value (dict, key, G_VARIANT_TYPE_BYTESTRING);
  gsize len = 0;
  const void *data = v ? g_variant_get_fixed_array (v, &len, 1) : NULL;

  if (data == NULL || len != size)
    {
      g_set_error (error, VR_ERROR, VR_ERROR_BAD_SNAPSHOT,
                   "The snapshot has no valid state for the %s", key);
      return false;
    }
  memcpy (out, data, size);
  return true;
}

static bool
load_vm_state (VrMachine  *self,
               GVariant   *vm,
               GError    **error)
{
  static const char *const chips[] = { "pic-master", "pic-slave", "ioapic" };
  struct kvm_pit_state2 pit;
  struct kvm_clock_data clock = { 0 };
  guint64 clock_ns;

  if (!g_variant_lookup (vm, "clock", "t", &clock_ns))
    {
      g_set_error (error, VR_ERROR, VR_ERROR_BAD_SNAPSHOT, "The snapshot has no clock");
      return false;
    }
  clock.clock = clock_ns;
  for (unsigned i = 0; i < G_N_ELEMENTS (chips); i++)
    {
      struct kvm_irqchip chip;

      if (!lookup_vm_bytes (vm, chips[i], &chip, sizeof chip, error))
        return false;
      if (chip.chip_id != i)
        {
          g_set_error (error, VR_ERROR, VR_ERROR_BAD_SNAPSHOT,
                       "The snapshot's %s state is for another chip", chips[i]);
          return false;
        }
      if (!kvm_vm_get (self, KVM_SET_IRQCHIP, &chip, "restore the interrupt controllers",
                       error))
        return false;
    }
  return lookup_vm_bytes (vm, "pit", &pit, sizeof pit, error)
         && kvm_vm_get (self, KVM_SET_PIT2, &pit, "restore the PIT", error)
         && kvm_vm_get (self, KVM_SET_CLOCK, &clock, "restore the clock", error);
}

static GVariant *
save_devices (VrMachine *self)
{
  g_auto (GVariantBuilder) b = G_VARIANT_BUILDER_INIT (G_VARIANT_TYPE ("a(smv)"));

  for (guint i = 0; i < self->devices->len; i++)
    {
      VrDevice *dev = g_ptr_array_index (self->devices, i);
      g_autoptr (GVariant) state = dev->ops->save ? dev->ops->save (dev) : NULL;

      if (state)
        g_variant_ref_sink (state);
      g_variant_builder_add (&b, "(smv)", dev->ops->name, state);
    }
  return g_variant_builder_end (&b);
}

static bool
load_devices (VrMachine  *self,
              GVariant   *devices,
              GError    **error)
{
  if (g_variant_n_children (devices) != self->devices->len)
    {
      g_set_error (error, VR_ERROR, VR_ERROR_BAD_SNAPSHOT,
                   "The snapshot has %" G_GSIZE_FORMAT " devices, the machine %u",
                   g_variant_n_children (devices), self->devices->len);
      return false;
    }
  for (guint i = 0; i < self->devices->len; i++)
    {
      VrDevice *dev = g_ptr_array_index (self->devices, i);
      g_autoptr (GVariant) state = NULL;
      const char *name;

      g_variant_get_child (devices, i, "(&smv)", &name, &state);
      if (!g_str_equal (name, dev->ops->name))
        {
          g_set_error (error, VR_ERROR, VR_ERROR_BAD_SNAPSHOT,
                       "The snapshot's device %u is a %s, the machine's a %s", i, name,
                       dev->ops->name);
          return false;
        }
      if (state && dev->ops->load && !dev->ops->load (dev, state, error))
        {
          g_prefix_error (error, "Cannot restore the %s: ", dev->ops->name);
          return false;
        }
    }
  return true;
}

/* Checks that every writable disk can take an internal snapshot. */
static bool
check_disks_snapshottable (VrMachine  *self,
                           GError    **error)
{
  for (guint i = 0; i < self->disks->len; i++)
    {
      VrDisk *disk = g_ptr_array_index (self->disks, i);

      if (vr_disk_is_readonly (disk) || vr_disk_get_format (disk) == VR_DISK_FORMAT_QCOW2)
        continue;
      g_set_error (error, VR_ERROR, VR_ERROR_INVALID_CONFIG,
                   "The disk “%s” is a %s image, which cannot hold snapshots: convert it to "
                   "qcow2 or put a qcow2 overlay on it first", vr_disk_get_filename (disk),
                   vr_disk_format_to_string (vr_disk_get_format (disk)));
      return false;
    }
  return true;
}

static bool
snapshot_disks (VrMachine   *self,
                const char  *id,
                uint64_t     clock_ns,
                GError     **error)
{
  for (guint i = 0; i < self->disks->len; i++)
    {
      VrDisk *disk = g_ptr_array_index (self->disks, i);

      if (vr_disk_is_readonly (disk))
        continue;
      if (!vr_disk_flush (disk, error)
          || !vr_disk_snapshot_create (disk, id, id, clock_ns, error))
        {
          g_prefix_error (error, "Cannot snapshot the disk “%s”: ", vr_disk_get_filename (disk));
          /* Take back the disk snapshots already made. */
          for (guint j = 0; j < i; j++)
            if (!vr_disk_is_readonly (g_ptr_array_index (self->disks, j)))
              vr_disk_snapshot_delete (g_ptr_array_index (self->disks, j), id, NULL);
          return false;
        }
    }
  return true;
}

static bool
do_save_snapshot (VrMachine  *self,
                  gpointer    data,
                  GError    **error)
{
  SnapshotCall *call = data;
  g_autofree char *id = call->disk_id ? g_strdup (call->disk_id) : g_path_get_basename (call->dir);
  g_autofree char *tmp = NULL;
  g_autofree char *layout = machine_layout (self);
  g_auto (GVariantBuilder) b = G_VARIANT_BUILDER_INIT (G_VARIANT_TYPE_VARDICT);
  g_autoptr (GVariant) payload = NULL;
  bool live = self->state == VR_STATE_RUNNING || self->state == VR_STATE_PAUSED;
  bool was_running = self->state == VR_STATE_RUNNING;
  bool disks_done = false, ok = false;
  uint8_t ram_id[VR_SNAPSHOT_ID_SIZE];
  uint64_t clock_ns = 0;
  int dir_fd = -1;

  if (!check_disks_snapshottable (self, error))
    return false;
  tmp = vr_snapshot_make_temp_dir (call->dir, error);
  if (tmp == NULL)
    return false;
  dir_fd = open (tmp, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir_fd < 0)
    {
      g_set_error (error, VR_ERROR, VR_ERROR_IO, "Cannot open “%s”: %s", tmp,
                   g_strerror (errno));
      goto out;
    }

  g_variant_builder_add (&b, "{sv}", "engine-version", g_variant_new_string (PACKAGE_VERSION));
  g_variant_builder_add (&b, "{sv}", "layout", g_variant_new_string (layout));
  g_variant_builder_add (&b, "{sv}", "created",
                         g_variant_new_int64 (g_get_real_time () / G_USEC_PER_SEC));
  g_variant_builder_add (&b, "{sv}", "disk-snapshot", g_variant_new_string (id));
  g_variant_builder_add (&b, "{sv}", "memory", g_variant_new_boolean (live));

  if (live)
    {
      g_autoptr (GVariant) vm = NULL;
      GVariantBuilder cpus;
      int ram_fd;

      if (was_running)
        park_vcpus (self);
      quiesce_devices (self);

      vm = save_vm_state (self, &clock_ns, error);
      if (vm == NULL)
        goto out;
      g_variant_builder_add (&b, "{sv}", "vm", g_steal_pointer (&vm));
      g_variant_builder_init (&cpus, G_VARIANT_TYPE ("av"));
      for (unsigned i = 0; i < self->config.cpus; i++)
        {
          GVariant *cpu = vr_vcpu_save_state (self->vcpus[i], self->kvm_fd, error);

          if (cpu == NULL)
            {
              g_variant_builder_clear (&cpus);
              goto out;
            }
          g_variant_builder_add (&cpus, "v", cpu);
        }
      g_variant_builder_add (&b, "{sv}", "vcpus", g_variant_builder_end (&cpus));
      g_variant_builder_add (&b, "{sv}", "devices", save_devices (self));

      for (unsigned i = 0; i < sizeof ram_id; i += 4)
        {
          guint32 r = g_random_int ();
          memcpy (ram_id + i, &r, 4);
        }
      g_variant_builder_add (&b, "{sv}", "ram-id", bytes_v (ram_id, sizeof ram_id));
      g_variant_builder_add (&b, "{sv}", "ram-size",
                             g_variant_new_uint64 (vr_memory_get_size (self->memory)));

      ram_fd = openat (dir_fd, "ram", O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
      if (ram_fd < 0)
        {
          g_set_error (error, VR_ERROR, VR_ERROR_IO, "Cannot create the memory file: %s",
                       g_strerror (errno));
          goto out;
        }
      ok = vr_snapshot_write_ram_header (ram_fd, vr_memory_get_size (self->memory), ram_id,
                                         error)
           && vr_memory_save (self->memory, ram_fd, VR_SNAPSHOT_RAM_OFFSET, error)
           && vr_snapshot_fsync (ram_fd, "the snapshot's memory", error);
      close (ram_fd);
      if (!ok)
        goto out;
      ok = false;
    }

  payload = g_variant_ref_sink (g_variant_builder_end (&b));
  if (!vr_snapshot_write_state (dir_fd, "state", payload, error))
    goto out;
  if (!snapshot_disks (self, id, clock_ns, error))
    goto out;
  disks_done = true;
  if (!vr_snapshot_commit_dir (tmp, call->dir, error))
    goto out;
  ok = true;

out:
  if (dir_fd >= 0)
    close (dir_fd);
  if (!ok)
    {
      if (disks_done)
        for (guint i = 0; i < self->disks->len; i++)
          if (!vr_disk_is_readonly (g_ptr_array_index (self->disks, i)))
            vr_disk_snapshot_delete (g_ptr_array_index (self->disks, i), id, NULL);
      vr_snapshot_remove_dir (tmp);
    }
  if (live)
    {
      resume_devices (self);
      g_atomic_int_inc (&self->snapshot_generation);
      if (was_running)
        unpark_vcpus (self);
    }
  return ok;
}

bool
vr_machine_save_snapshot (VrMachine   *self,
                          const char  *dir,
                          const char  *disk_id,
                          GError     **error)
{
  SnapshotCall call = { .self = self, .dir = dir, .disk_id = disk_id, .func = do_save_snapshot };

  g_return_val_if_fail (self != NULL && dir != NULL, false);
  if (g_file_test (dir, G_FILE_TEST_EXISTS))
    {
      g_set_error (error, VR_ERROR, VR_ERROR_IO, "The snapshot “%s” exists already", dir);
      return false;
    }
  return run_snapshot_call (&call, error);
}

/* Everything a restore needs, read and checked before the machine is touched. */
typedef struct
{
  GVariant *state;
  GVariant *vm;
  GVariant *vcpus;
  GVariant *devices;
  char     *disk_id;
  bool      memory;
  int       ram_fd;
} Restore;

static void
restore_clear (Restore *r)
{
  g_clear_pointer (&r->state, g_variant_unref);
  g_clear_pointer (&r->vm, g_variant_unref);
  g_clear_pointer (&r->vcpus, g_variant_unref);
  g_clear_pointer (&r->devices, g_variant_unref);
  g_clear_pointer (&r->disk_id, g_free);
  if (r->ram_fd >= 0)
    close (r->ram_fd);
  r->ram_fd = -1;
}

static bool
bad_snapshot (GError    **error,
              const char *dir,
              const char *what)
{
  g_set_error (error, VR_ERROR, VR_ERROR_BAD_SNAPSHOT, "The snapshot “%s” is damaged: %s", dir,
               what);
  return false;
}

static bool
read_snapshot (VrMachine   *self,
               const char  *dir,
               Restore     *r,
               GError     **error)
{
  g_autofree char *state_path = g_build_filename (dir, "state", NULL);
  g_autofree char *ram_path = g_build_filename (dir, "ram", NULL);
  g_autofree char *layout = machine_layout (self);
  g_autoptr (GVariant) ram_id = NULL;
  const char *saved_layout, *disk_id;
  gboolean memory;

  r->state = vr_snapshot_read_state (state_path, error);
  if (r->state == NULL)
    return false;
  if (!g_variant_lookup (r->state, "layout", "&s", &saved_layout)
      || !g_variant_lookup (r->state, "memory", "b", &memory)
      || !g_variant_lookup (r->state, "disk-snapshot", "&s", &disk_id))
    return bad_snapshot (error, dir, "its header is incomplete");
  if (!g_str_equal (saved_layout, layout))
    {
      g_set_error (error, VR_ERROR, VR_ERROR_BAD_SNAPSHOT,
                   "The snapshot “%s” was taken of a machine built differently (%s), not of "
                   "this one (%s)", dir, saved_layout, layout);
      return false;
    }
  r->memory = memory;
  r->disk_id = g_strdup (disk_id);

  for (guint i = 0; i < self->disks->len; i++)
    {
      VrDisk *disk = g_ptr_array_index (self->disks, i);
      g_autoptr (GPtrArray) snaps = NULL;
      bool found = false;

      if (vr_disk_is_readonly (disk))
        continue;
      snaps = vr_disk_snapshot_list (disk, error);
      if (snaps == NULL)
        return false;
      for (guint j = 0; j < snaps->len && !found; j++)
        found = g_strcmp0 (((VrDiskSnapshot *) g_ptr_array_index (snaps, j))->id, disk_id) == 0;
      if (!found)
        {
          g_set_error (error, VR_ERROR, VR_ERROR_BAD_SNAPSHOT,
                       "The disk “%s” has no snapshot “%s”: it was changed outside Vireo",
                       vr_disk_get_filename (disk), disk_id);
          return false;
        }
    }

  if (!memory)
    return true;

  r->vm = g_variant_lookup_value (r->state, "vm", G_VARIANT_TYPE_VARDICT);
  r->vcpus = g_variant_lookup_value (r->state, "vcpus", G_VARIANT_TYPE ("av"));
  r->devices = g_variant_lookup_value (r->state, "devices", G_VARIANT_TYPE ("a(smv)"));
  ram_id = g_variant_lookup_value (r->state, "ram-id", G_VARIANT_TYPE_BYTESTRING);
  if (r->vm == NULL || r->vcpus == NULL || r->devices == NULL || ram_id == NULL
      || g_variant_n_children (ram_id) != VR_SNAPSHOT_ID_SIZE)
    return bad_snapshot (error, dir, "parts of the machine state are missing");
  if (g_variant_n_children (r->vcpus) != self->config.cpus)
    return bad_snapshot (error, dir, "it has the wrong number of vCPUs");

  r->ram_fd = open (ram_path, O_RDONLY | O_CLOEXEC);
  if (r->ram_fd < 0)
    {
      g_set_error (error, VR_ERROR, VR_ERROR_BAD_SNAPSHOT,
                   "The snapshot's memory file “%s” cannot be opened: %s", ram_path,
                   g_strerror (errno));
      return false;
    }
  return vr_snapshot_check_ram_header (r->ram_fd, ram_path, vr_memory_get_size (self->memory),
                                       g_variant_get_data (ram_id), error);
}

typedef struct
{
  VrMachine  *self;
  const char *id;
  bool        ok;
  GError     *error;
} DiskRevert;

/* Applies the disk snapshot @id to every writable disk. */
static bool
revert_disks (DiskRevert  *revert,
              GError     **error)
{
  VrMachine *self = revert->self;

  for (guint i = 0; i < self->disks->len; i++)
    {
      VrDisk *disk = g_ptr_array_index (self->disks, i);

      if (!vr_disk_is_readonly (disk) && !vr_disk_snapshot_apply (disk, revert->id, error))
        {
          g_prefix_error (error, "Cannot revert the disk “%s”: ", vr_disk_get_filename (disk));
          return false;
        }
    }
  return true;
}

static gpointer
revert_disks_thread (gpointer data)
{
  DiskRevert *revert = data;

  revert->ok = revert_disks (revert, &revert->error);
  return NULL;
}

static bool
do_restore_snapshot (VrMachine  *self,
                     gpointer    data,
                     GError    **error)
{
  SnapshotCall *call = data;
  Restore r = { .ram_fd = -1 };
  DiskRevert revert = { 0 };
  GThread *disk_thread = NULL;
  bool live = self->state == VR_STATE_RUNNING || self->state == VR_STATE_PAUSED;
  bool ok = false;

  if (!read_snapshot (self, call->dir, &r, error))
    goto out;

  /* From here on the machine is changed: a failure leaves it stopped. A live machine keeps
   * its KVM VM and vCPU threads (parked): every piece of their state is put back below, and
   * creating a VM costs more than the rest of a restore (memory slots, irqchip). */
  if (live)
    {
      if (self->state == VR_STATE_RUNNING)
        park_vcpus (self);
      quiesce_devices (self);
      if (!r.memory)
        {
          stop_vcpus (self);
          destroy_vm (self);
        }
    }

  /* The disks revert (qcow2 metadata written and synced) on a thread of their own while
   * RAM and the KVM state are put back: neither needs the other before the devices load. */
  revert.self = self;
  revert.id = r.disk_id;
  if (!r.memory)
    {
      if (!revert_disks (&revert, error))
        goto fail;
      vr_memory_discard (self->memory);
      for (guint i = 0; i < self->devices->len; i++)
        vr_device_reset (g_ptr_array_index (self->devices, i));
      g_mutex_lock (&self->lock);
      self->state = VR_STATE_STOPPED;
      self->stop_reason = VR_STOP_REQUESTED;
      self->request = REQUEST_NONE;
      g_mutex_unlock (&self->lock);
      if (live)
        {
          emit_event (self, VR_EVENT_STATE_CHANGED, NULL);
          emit_event (self, VR_EVENT_POWERED_OFF, NULL);
        }
      ok = true;
      goto out;
    }

  disk_thread = g_thread_new ("vireo-disk-revert", revert_disks_thread, &revert);
  if (!vr_memory_map_private (self->memory, r.ram_fd, VR_SNAPSHOT_RAM_OFFSET,
                              (call->flags & VR_RESTORE_PREFAULT) != 0, error))
    goto fail;
  if (live)
    {
      for (guint i = 0; i < self->devices->len; i++)
        vr_device_reset (g_ptr_array_index (self->devices, i));
    }
  else if (!create_vm (self, true, error))
    goto fail;
  if (!load_vm_state (self, r.vm, error))
    goto fail;
  for (unsigned i = 0; i < self->config.cpus; i++)
    {
      g_autoptr (GVariant) cpu = NULL;

      g_variant_get_child (r.vcpus, i, "v", &cpu);
      if (!vr_vcpu_load_state (self->vcpus[i], self->kvm_fd, cpu, error))
        goto fail;
    }
  /* Before the devices: a virtio-blk device that is loaded looks at its queue at once and
   * may read or write the disk. */
  g_thread_join (g_steal_pointer (&disk_thread));
  if (!revert.ok)
    {
      g_propagate_error (error, g_steal_pointer (&revert.error));
      goto fail;
    }
  if (!load_devices (self, r.devices, error))
    goto fail;

  g_mutex_lock (&self->lock);
  self->request = REQUEST_NONE;
  g_clear_pointer (&self->request_message, g_free);
  self->stop_reason = VR_STOP_NONE;
  self->exit_status = 0;
  g_mutex_unlock (&self->lock);
  g_atomic_int_inc (&self->snapshot_generation);
  if (!live)
    start_vcpus (self, (call->flags & VR_RESTORE_PAUSED) != 0);
  if (call->flags & VR_RESTORE_PAUSED)
    park_vcpus (self);
  else if (live)
    unpark_vcpus (self);
  g_mutex_lock (&self->lock);
  self->state = (call->flags & VR_RESTORE_PAUSED) ? VR_STATE_PAUSED : VR_STATE_RUNNING;
  g_mutex_unlock (&self->lock);
  emit_event (self, VR_EVENT_STATE_CHANGED, NULL);
  ok = true;
  goto out;

fail:
  if (disk_thread)
    g_thread_join (g_steal_pointer (&disk_thread));
  g_clear_error (&revert.error);
  stop_vcpus (self);
  destroy_vm (self);
  vr_memory_discard (self->memory);
  g_mutex_lock (&self->lock);
  self->state = VR_STATE_STOPPED;
  self->stop_reason = VR_STOP_GUEST_ERROR;
  self->request = REQUEST_NONE;
  g_mutex_unlock (&self->lock);
  emit_event (self, VR_EVENT_STATE_CHANGED, NULL);
  emit_event (self, VR_EVENT_POWERED_OFF, NULL);

out:
  restore_clear (&r);
  return ok;
}

bool
vr_machine_restore_snapshot (VrMachine       *self,
                             const char      *dir,
                             VrRestoreFlags   flags,
                             GError         **error)
{
  SnapshotCall call = { .self = self, .dir = dir, .flags = flags, .func = do_restore_snapshot };

  g_return_val_if_fail (self != NULL && dir != NULL, false);
  return run_snapshot_call (&call, error);
}

static bool
do_delete_snapshot (VrMachine  *self,
                    gpointer    data,
                    GError    **error)
{
  SnapshotCall *call = data;
  g_autofree char *state_path = g_build_filename (call->dir, "state", NULL);
  g_autoptr (GVariant) state = vr_snapshot_read_state (state_path, NULL);
  g_autofree char *id = NULL;

  /* A damaged snapshot can still be deleted: its disk snapshots carry the directory's name
   * unless the state file says otherwise. */
  if (state == NULL || !g_variant_lookup (state, "disk-snapshot", "s", &id))
    id = g_path_get_basename (call->dir);
  for (guint i = 0; i < self->disks->len; i++)
    {
      VrDisk *disk = g_ptr_array_index (self->disks, i);
      g_autoptr (GError) local = NULL;

      if (vr_disk_is_readonly (disk) || vr_disk_get_format (disk) != VR_DISK_FORMAT_QCOW2)
        continue;
      if (!vr_disk_snapshot_delete (disk, id, &local)
          && !g_error_matches (local, VR_DISK_ERROR, VR_DISK_ERROR_NOT_FOUND))
        {
          g_set_error (error, VR_ERROR, VR_ERROR_IO, "Cannot delete the snapshot of “%s”: %s",
                       vr_disk_get_filename (disk), local->message);
          return false;
        }
    }
  vr_snapshot_remove_dir (call->dir);
  return true;
}

bool
vr_machine_delete_snapshot (VrMachine   *self,
                            const char  *dir,
                            GError     **error)
{
  SnapshotCall call = { .self = self, .dir = dir, .func = do_delete_snapshot };

  g_return_val_if_fail (self != NULL && dir != NULL, false);
  return run_snapshot_call (&call, error);
}

/* The guest's snapshot port: a write of 1 asks the caller for a snapshot; reads see the
 * generation, which moves after each save and restore. */
static void
snapshot_port_io (void     *opaque,
                  uint64_t  offset,
                  uint8_t  *data,
                  uint32_t  len,
                  bool      is_write)
{
  VrMachine *self = opaque;

  if (!is_write)
    {
      vr_io_put (data, len, (uint64_t) g_atomic_int_get (&self->snapshot_generation) & 0xff);
      return;
    }
  if (vr_io_get (data, len) == 1)
    emit_event (self, VR_EVENT_SNAPSHOT_REQUESTED, NULL);
}

/* ---- destruction ------------------------------------------------------------------------ */

static void
machine_finalize (VrMachine *self)
{
  g_clear_pointer (&self->input, vr_input_free);
  for (guint i = self->devices->len; i > 0; i--)
    vr_device_destroy (g_ptr_array_index (self->devices, i - 1));
  g_ptr_array_unref (self->devices);
  g_ptr_array_unref (self->disks);
  g_ptr_array_unref (self->blk_devices);
  g_ptr_array_unref (self->net_devices);
  g_clear_pointer (&self->display, vr_display_free);
  g_clear_pointer (&self->serial_chr, vr_chardev_free);
  g_clear_pointer (&self->console_chr, vr_chardev_free);
  g_clear_pointer (&self->acpi_tables, g_bytes_unref);
  g_clear_pointer (&self->boot, vr_boot_image_free);
  g_clear_pointer (&self->firmware, vr_firmware_free);  /* before the memory it is mapped in */
  g_clear_pointer (&self->memory, vr_memory_free);
  g_clear_pointer (&self->cpuid, g_free);
  if (self->kvm_fd >= 0)
    close (self->kvm_fd);
  vr_irqchip_free (self->irq);
  vr_bus_free (self->pio);
  vr_bus_free (self->mmio);
  if (self->event_destroy)
    self->event_destroy (self->event_data);
  g_clear_pointer (&self->event_context, g_main_context_unref);
  g_free (self->request_message);
  vr_machine_config_clear (&self->config);
  g_mutex_clear (&self->control);
  g_mutex_clear (&self->lock);
  g_cond_clear (&self->cond);
  g_free (self);
}

static void
machine_unref (VrMachine *self)
{
  if (g_atomic_int_dec_and_test (&self->ref_count))
    machine_finalize (self);
}

void
vr_machine_free (VrMachine *self)
{
  if (self == NULL)
    return;

  g_atomic_int_set (&self->disposed, 1);
  g_mutex_lock (&self->control);
  stop_vcpus (self);
  destroy_vm (self);
  g_mutex_lock (&self->lock);
  self->state = VR_STATE_STOPPED;
  self->request = REQUEST_NONE;
  g_mutex_unlock (&self->lock);
  g_mutex_unlock (&self->control);
  /* No request handler can run after this: the I/O thread is gone. */
  g_clear_pointer (&self->iothread, vr_iothread_free);
  machine_unref (self);
}

/* ---- input ------------------------------------------------------------------------------ */

/* The router exists once vr_machine_new() has succeeded; it is NULL only in a half-built
 * machine, which no caller can hold. */

void
vr_machine_input_key (VrMachine *self,
                      unsigned   code,
                      bool       pressed)
{
  g_return_if_fail (self != NULL);
  g_return_if_fail (code <= KEY_MAX);
  vr_input_key (self->input, code, pressed);
}

void
vr_machine_input_abs (VrMachine *self,
                      unsigned   x,
                      unsigned   y)
{
  g_return_if_fail (self != NULL);
  vr_input_abs (self->input, x, y);
}

void
vr_machine_input_rel (VrMachine *self,
                      int        dx,
                      int        dy)
{
  g_return_if_fail (self != NULL);
  vr_input_rel (self->input, dx, dy);
}

void
vr_machine_input_button (VrMachine *self,
                         unsigned   code,
                         bool       pressed)
{
  g_return_if_fail (self != NULL);
  g_return_if_fail (code <= KEY_MAX);
  vr_input_button (self->input, code, pressed);
}

void
vr_machine_input_wheel (VrMachine *self,
                        int        delta)
{
  g_return_if_fail (self != NULL);
  vr_input_wheel (self->input, delta);
}

void
vr_machine_input_get_routing (VrMachine      *self,
                              VrInputRouting *routing)
{
  g_return_if_fail (self != NULL);
  g_return_if_fail (routing != NULL);
  vr_input_get_routing (self->input, routing);
}

bool
vr_machine_change_cdrom (VrMachine   *self,
                         const char  *path,
                         GError     **error)
{
  g_return_val_if_fail (self != NULL, false);

  if (self->cdrom == NULL)
    {
      g_set_error (error, VR_ERROR, VR_ERROR_INVALID_CONFIG,
                   "The machine “%s” has no CD-ROM drive", self->config.name);
      return false;
    }
  if (!vr_virtio_scsi_change_medium (self->cdrom, path, error))
    return false;
  emit_event (self, VR_EVENT_CDROM_CHANGED, NULL);
  return true;
}

char *
vr_machine_get_cdrom (VrMachine *self)
{
  g_return_val_if_fail (self != NULL, NULL);

  if (self->cdrom == NULL)
    return NULL;
  return vr_virtio_scsi_get_medium (self->cdrom);
}

const char *
vr_machine_get_console_pty (VrMachine *self)
{
  g_return_val_if_fail (self != NULL, NULL);
  return self->console_chr ? vr_chardev_get_pty_path (self->console_chr) : NULL;
}
