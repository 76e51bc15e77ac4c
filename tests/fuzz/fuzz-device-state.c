/* SPDX-License-Identifier: GPL-3.0-or-later */

/*
 * Fuzzes the devices' snapshot loaders (the load op of vr-device.h). The first byte picks a
 * device, the rest is its saved state: serialised GVariant data of that device's state type,
 * read as untrusted, as from a snapshot file. A load must succeed or fail with an error, and a
 * device that accepted a state must save again. The seeds are each device's state after a
 * reset; build this file with -DFUZZ_WRITE_SEEDS and run it with a directory to write them.
 */

#include <glib.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "hw/bochs-display.h"
#include "hw/hw.h"
#include "hw/pci.h"
#include "virtio/virtio.h"
#include "vr-display-private.h"

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

#define RAM_SIZE  (16u << 20)
#define MMIO_BASE VR_MMIO_HOLE_START

typedef struct
{
  VrBus         *pio;
  VrBus         *mmio;
  VrIrqChip     *irq;
  VrMemory      *mem;
  GMainContext  *io;
  VrDisplay     *display;
  GPtrArray     *devices;   /* VrDevice */
  GPtrArray     *types;     /* GVariantType of each one's state */
} World;

static void
add (World *w, VrDevice *dev)
{
  g_autoptr (GVariant) state = NULL;

  g_assert (dev != NULL);
  vr_device_reset (dev);
  state = g_variant_ref_sink (dev->ops->save (dev));
  g_ptr_array_add (w->devices, dev);
  g_ptr_array_add (w->types, g_variant_type_copy (g_variant_get_type (state)));
}

static World *
world (void)
{
  static World *w;
  VrVirtioHost host;
  VrDevice *pci;

  if (w != NULL)
    return w;
  w = g_new0 (World, 1);
  w->pio = vr_bus_new ("port I/O");
  w->mmio = vr_bus_new ("MMIO");
  w->irq = vr_irqchip_new ();
  w->mem = vr_memory_new (RAM_SIZE, NULL);
  w->io = g_main_context_new ();
  w->display = vr_display_new (w->io);
  w->devices = g_ptr_array_new ();
  w->types = g_ptr_array_new ();

  pci = vr_pci_host_new (w->pio, NULL, NULL);
  vr_pci_host_attach_mmio (pci, w->mmio, MMIO_BASE, 0x10000000, NULL);
  host = (VrVirtioHost) { .memory = w->mem, .irq = w->irq, .pci_host = pci,
                          .io_context = w->io, .slot = 3, .gsi = 19 };

  add (w, vr_serial_new (w->pio, VR_COM1_BASE, w->irq, VR_COM1_IRQ, NULL, NULL, NULL));
  add (w, vr_i8042_new (w->pio, w->irq, NULL, NULL));
  add (w, vr_rtc_new (w->pio, w->irq, w->mem, NULL, NULL));
  add (w, vr_pc_misc_new (w->pio, NULL, NULL));
  add (w, vr_acpi_pm_new (w->pio, w->irq, NULL, NULL));
  {
    VrDevice *fw_cfg = vr_fw_cfg_new (w->pio, w->mem, NULL);

    vr_fw_cfg_add_file (fw_cfg, "etc/fuzz", "0123456789", 10);
    add (w, fw_cfg);
  }
  add (w, vr_virtio_rng_new (&host, NULL));
  host.slot = 4;
  add (w, vr_virtio_input_new (&host, VR_VIRTIO_INPUT_TABLET, NULL));
  host.slot = 5;
  add (w, vr_virtio_gpu_new (&host, w->display, NULL));
  host.slot = 6;
  add (w, vr_virtio_console_new (&host, NULL, NULL));
  add (w, vr_bochs_display_new (pci, w->mem, w->display, NULL, 7, MMIO_BASE,
                                MMIO_BASE + VR_BOCHS_FB_SIZE, NULL, NULL));
  /* The host last: its state covers every function plugged above. */
  add (w, pci);
  return w;
}

int
LLVMFuzzerTestOneInput (const uint8_t *data,
                        size_t         size)
{
  World *w = world ();
  g_autoptr (GBytes) bytes = NULL;
  g_autoptr (GVariant) state = NULL;
  g_autoptr (GError) error = NULL;
  VrDevice *dev;
  unsigned index;

  if (size < 1)
    return 0;
  index = data[0] % w->devices->len;
  dev = g_ptr_array_index (w->devices, index);
  bytes = g_bytes_new (data + 1, size - 1);
  state = g_variant_ref_sink (g_variant_new_from_bytes (g_ptr_array_index (w->types, index),
                                                        bytes, FALSE));
  vr_device_reset (dev);
  if (dev->ops->load (dev, state, &error))
    {
      g_autoptr (GVariant) again = g_variant_ref_sink (dev->ops->save (dev));

      g_assert (g_variant_is_of_type (again, g_ptr_array_index (w->types, index)));
    }
  else
    g_assert (error != NULL && error->domain == VR_ERROR);
  if (g_getenv ("FUZZ_VERBOSE"))
    g_printerr ("%s: %s\n", dev->ops->name, error ? error->message : "loaded");
  /* What a load kicked runs now, on whatever rings the state pointed at. */
  for (int i = 0; i < 4 && g_main_context_iteration (w->io, FALSE); i++)
    ;
  return 0;
}

#ifdef FUZZ_WRITE_SEEDS
static GVariant *
replace (GVariant *tuple, gsize index, GVariant *value)
{
  gsize n = g_variant_n_children (tuple);
  GVariant *children[32];

  g_assert (n <= G_N_ELEMENTS (children));
  for (gsize i = 0; i < n; i++)
    children[i] = i == index ? value : g_variant_get_child_value (tuple, i);
  return g_variant_ref_sink (g_variant_new_tuple (children, n));
}

static void
write_seed (const char *dir, unsigned index, const char *name, GVariant *state)
{
  g_autofree char *path = g_strdup_printf ("%s/%02u-%s.bin", dir, index, name);
  g_autofree uint8_t *buf = g_malloc (g_variant_get_size (state) + 1);

  buf[0] = (uint8_t) index;
  memcpy (buf + 1, g_variant_get_data (state), g_variant_get_size (state));
  g_assert (g_file_set_contents (path, (const char *) buf, (gssize) g_variant_get_size (state) + 1,
                                 NULL));
}

int
main (int argc, char **argv)
{
  World *w = world ();

  g_assert (argc == 2);
  for (unsigned i = 0; i < w->devices->len; i++)
    {
      VrDevice *dev = g_ptr_array_index (w->devices, i);
      g_autoptr (GVariant) state = g_variant_ref_sink (dev->ops->save (dev));

      write_seed (argv[1], i, dev->ops->name, state);
      if (strcmp (dev->ops->name, "virtio-pci") == 0)
        {
          /* Running, queue 0 enabled on rings in RAM, one buffer in use. */
          g_autoptr (GVariant) host = g_variant_get_child_value (state, 1);
          g_autoptr (GVariant) queues = g_variant_get_child_value (state, 13);
          g_autoptr (GVariant) q0 = g_variant_get_child_value (queues, 0);
          g_autoptr (GVariant) s1 = replace (state, 2, g_variant_new_uint64 (
                                                         g_variant_get_uint64 (host)));
          g_autoptr (GVariant) s2 = replace (s1, 3, g_variant_new_byte (0x0f));
          g_autoptr (GVariant) r1 = replace (q0, 0, g_variant_new_uint16 (8));
          g_autoptr (GVariant) r2 = replace (r1, 2, g_variant_new_boolean (TRUE));
          g_autoptr (GVariant) r3 = replace (r2, 3, g_variant_new_uint64 (0x10000));
          g_autoptr (GVariant) r4 = replace (r3, 4, g_variant_new_uint64 (0x11000));
          g_autoptr (GVariant) r5 = replace (r4, 5, g_variant_new_uint64 (0x12000));
          g_autoptr (GVariant) r6 = replace (r5, 6, g_variant_new_uint16 (1));
          GVariantBuilder b;
          g_autoptr (GVariant) running = NULL;
          g_autofree char *name = g_strdup_printf ("%s-running", dev->ops->name);

          g_variant_builder_init (&b, g_variant_get_type (queues));
          g_variant_builder_add_value (&b, r6);
          for (gsize q = 1; q < g_variant_n_children (queues); q++)
            {
              g_autoptr (GVariant) other = g_variant_get_child_value (queues, q);

              g_variant_builder_add_value (&b, other);
            }
          running = replace (s2, 13, g_variant_builder_end (&b));
          write_seed (argv[1], i, name, running);
        }
    }
  return 0;
}
#endif
