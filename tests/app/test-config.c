/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * machine.conf: every key through a save and a load, unknown keys kept, migration from
 * format 0, refusal of newer formats, damaged files, validation, the engine's config, and
 * the atomic write helper. Booting through the firmware: the CD/DVD drive (one, possibly
 * empty), the boot order, the firmware file, and files written before all that.
 */

#include "config.h"

#include <glib/gstdio.h>
#include <string.h>

#include "vireo-atomic-file.h"
#include "vireo-machine-config.h"

static VireoMachineConfig *
full_config (void)
{
  VireoMachineConfig *c = vireo_machine_config_new ();
  VireoDiskConfig *d;
  VireoNicConfig *n;

  g_free (c->uuid);
  c->uuid = g_strdup ("0b9e5f34-6e0b-4c1e-9f1e-2a3b4c5d6e7f");
  c->name = g_strdup ("Débian “bookworm” ; = # test");
  g_date_time_unref (c->created);
  c->created = g_date_time_new_utc (2024, 5, 17, 9, 30, 12);
  c->source = g_strdup ("Debian 12 installer");
  c->notes = g_strdup ("Line one\nLine two\twith a tab; and \\ a backslash");
  c->boot_kind = VIREO_BOOT_CDROM;
  c->kernel = g_strdup ("/boot/vmlinuz");
  c->initrd = g_strdup ("initrd.img");
  c->cmdline = g_strdup ("console=ttyS0 root=/dev/vda quiet");
  c->firmware = g_strdup ("/usr/share/seabios/bios.bin");
  c->boot_order = g_strdup ("cdrom,disk");
  c->memory_mib = 96;
  c->cpus = 1;
  c->display = VIREO_DISPLAY_VIRTIO;
  c->input = FALSE;
  c->rng = FALSE;
  c->serial_log = FALSE;

  d = vireo_disk_config_new ("disk.qcow2", VR_DISK_FORMAT_QCOW2);
  d->serial = g_strdup ("VIREO-0001");
  g_ptr_array_add (c->disks, d);
  d = vireo_disk_config_new ("/home/user/Downloads/debian 12.iso", VR_DISK_FORMAT_RAW);
  d->readonly = TRUE;
  d->media = VIREO_DISK_MEDIA_CDROM;
  g_ptr_array_add (c->disks, d);
  d = vireo_disk_config_new ("old.vmdk", VR_DISK_FORMAT_VMDK);
  d->readonly = TRUE;
  g_ptr_array_add (c->disks, d);

  g_ptr_array_set_size (c->nics, 0);
  n = vireo_nic_config_new (VIREO_NET_USER);
  n->mac = g_strdup ("52:54:00:aa:bb:cc");
  n->host_forwards = g_strsplit ("tcp::2222-:22|udp:127.0.0.1:5353-:53", "|", -1);
  g_ptr_array_add (c->nics, n);
  n = vireo_nic_config_new (VIREO_NET_TAP);
  n->tap = g_strdup ("tap0");
  g_ptr_array_add (c->nics, n);
  g_ptr_array_add (c->nics, vireo_nic_config_new (VIREO_NET_NONE));
  return c;
}

static void
assert_configs_equal (VireoMachineConfig *a, VireoMachineConfig *b)
{
  g_assert_cmpstr (a->uuid, ==, b->uuid);
  g_assert_cmpstr (a->name, ==, b->name);
  g_assert_true (g_date_time_equal (a->created, b->created));
  g_assert_cmpstr (a->source, ==, b->source);
  g_assert_cmpstr (a->notes, ==, b->notes);
  g_assert_cmpint (a->boot_kind, ==, b->boot_kind);
  g_assert_cmpstr (a->kernel, ==, b->kernel);
  g_assert_cmpstr (a->initrd, ==, b->initrd);
  g_assert_cmpstr (a->cmdline, ==, b->cmdline);
  g_assert_cmpstr (a->firmware, ==, b->firmware);
  g_assert_cmpstr (a->boot_order, ==, b->boot_order);
  g_assert_cmpuint (a->memory_mib, ==, b->memory_mib);
  g_assert_cmpuint (a->cpus, ==, b->cpus);
  g_assert_cmpint (a->display, ==, b->display);
  g_assert_cmpint (a->input, ==, b->input);
  g_assert_cmpint (a->rng, ==, b->rng);
  g_assert_cmpint (a->serial_log, ==, b->serial_log);
  g_assert_cmpuint (a->disks->len, ==, b->disks->len);
  for (guint i = 0; i < a->disks->len; i++)
    {
      VireoDiskConfig *x = g_ptr_array_index (a->disks, i);
      VireoDiskConfig *y = g_ptr_array_index (b->disks, i);

      g_assert_cmpstr (x->path, ==, y->path);
      g_assert_cmpint (x->format, ==, y->format);
      g_assert_cmpint (x->readonly, ==, y->readonly);
      g_assert_cmpint (x->media, ==, y->media);
      g_assert_cmpint (x->ejected, ==, y->ejected);
      g_assert_cmpstr (x->serial, ==, y->serial);
    }
  g_assert_cmpuint (a->nics->len, ==, b->nics->len);
  for (guint i = 0; i < a->nics->len; i++)
    {
      VireoNicConfig *x = g_ptr_array_index (a->nics, i);
      VireoNicConfig *y = g_ptr_array_index (b->nics, i);
      char *none[] = { NULL };
      g_autofree char *sx = g_strjoinv ("|", x->host_forwards ? x->host_forwards : none);
      g_autofree char *sy = g_strjoinv ("|", y->host_forwards ? y->host_forwards : none);

      g_assert_cmpint (x->kind, ==, y->kind);
      g_assert_cmpstr (x->tap, ==, y->tap);
      g_assert_cmpstr (x->mac, ==, y->mac);
      g_assert_cmpstr (sx, ==, sy);
    }
}

static void
test_round_trip (void)
{
  g_autoptr(VireoMachineConfig) c = full_config ();
  g_autoptr(VireoMachineConfig) back = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *data = NULL;
  g_autofree char *again = NULL;
  gsize len;

  data = vireo_machine_config_to_data (c, &len);
  g_test_message ("%s", data);
  g_assert_nonnull (strstr (data, "[Vireo]\nVersion=1\n"));
  g_assert_nonnull (strstr (data, "[Disk 0]"));
  g_assert_nonnull (strstr (data, "[Network 1]"));
  back = vireo_machine_config_load_from_data (data, len, &error);
  g_assert_no_error (error);
  g_assert_cmpint (back->loaded_version, ==, 1);
  assert_configs_equal (c, back);

  /* Writing what was read gives the same bytes. */
  again = vireo_machine_config_to_data (back, NULL);
  g_assert_cmpstr (data, ==, again);

  /* A copy is deep and equal. */
  {
    g_autoptr(VireoMachineConfig) copy = vireo_machine_config_copy (back);
    g_autofree char *copied = vireo_machine_config_to_data (copy, NULL);

    assert_configs_equal (c, copy);
    g_assert_cmpstr (copied, ==, data);
  }
}

static const char unknown_keys_conf[] =
  "# made by Vireo 1.7\n"
  "[Vireo]\nVersion=1\nMinor=7\n"
  "[General]\nName=Future\nUuid=0b9e5f34-6e0b-4c1e-9f1e-2a3b4c5d6e7f\nName[de]=Zukunft\n"
  "Color=#3584e4\n"
  "[Boot]\nKind=kernel\nKernel=/vmlinuz\nSecureBoot=true\n"
  "[Hardware]\nMemory=512\nCpus=1\nTpm=2.0\n"
  "[Disk 0]\nPath=a.qcow2\nFormat=qcow2\nCache=writeback\n"
  "[Network 0]\nKind=user\nModel=virtio-net\n"
  "[Usb 0]\nVendor=046d\nProduct=c52b\n"
  "[Shared Folder home]\nPath=/home/user\nTag=home\n";

static void
test_unknown_keys (void)
{
  g_autoptr(VireoMachineConfig) c = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(GKeyFile) kf = g_key_file_new ();
  g_autofree char *data = NULL;
  VireoDiskConfig *disk;

  c = vireo_machine_config_load_from_data (unknown_keys_conf, sizeof unknown_keys_conf - 1,
                                           &error);
  g_assert_no_error (error);
  g_assert_cmpstr (c->name, ==, "Future");

  /* An edit, then a save: the unknown keys and groups are still there. */
  g_free (c->name);
  c->name = g_strdup ("Renamed");
  disk = g_ptr_array_index (c->disks, 0);
  disk->readonly = TRUE;
  data = vireo_machine_config_to_data (c, NULL);
  g_test_message ("%s", data);
  g_assert_true (g_key_file_load_from_data (kf, data, (gsize) -1, G_KEY_FILE_KEEP_TRANSLATIONS,
                                            &error));
  g_assert_no_error (error);

#define ASSERT_KEY(g, k, v)                                                                    \
  do                                                                                           \
    {                                                                                          \
      g_autofree char *val = g_key_file_get_value (kf, g, k, NULL);                            \
      g_assert_cmpstr (val, ==, v);                                                            \
    }                                                                                          \
  while (0)
  ASSERT_KEY ("Vireo", "Minor", "7");
  ASSERT_KEY ("General", "Name", "Renamed");
  ASSERT_KEY ("General", "Name[de]", "Zukunft");
  ASSERT_KEY ("General", "Color", "#3584e4");
  ASSERT_KEY ("Boot", "SecureBoot", "true");
  ASSERT_KEY ("Hardware", "Tpm", "2.0");
  ASSERT_KEY ("Disk 0", "Cache", "writeback");
  ASSERT_KEY ("Disk 0", "ReadOnly", "true");
  ASSERT_KEY ("Network 0", "Model", "virtio-net");
  ASSERT_KEY ("Usb 0", "Vendor", "046d");
  ASSERT_KEY ("Usb 0", "Product", "c52b");
  ASSERT_KEY ("Shared Folder home", "Tag", "home");
#undef ASSERT_KEY
}

static const char v0_conf[] =
  "[Vireo]\nVersion=0\n"
  "[Machine]\nName=Old timer\nUuid=11111111-2222-4333-8444-555555555555\nMemory=256M\n"
  "Cpus=1\nKernel=/boot/bzImage\nInitrd=initrd.gz\nAppend=console=ttyS0\n"
  "Disks=root.img;data.qcow2\nDiskFormats=raw;qcow2\nNetwork=user\nSerial=false\n";

static const char v0_conf_unversioned[] =
  "[Machine]\nName=No version at all\nMemory=64M\nNetwork=none\nKernel=k\n";

static void
test_migrate_v0 (void)
{
  g_autoptr(VireoMachineConfig) c = NULL;
  g_autoptr(VireoMachineConfig) back = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *data = NULL;
  VireoDiskConfig *d;

  c = vireo_machine_config_load_from_data (v0_conf, sizeof v0_conf - 1, &error);
  g_assert_no_error (error);
  g_assert_cmpint (c->loaded_version, ==, 0);
  g_assert_cmpstr (c->name, ==, "Old timer");
  g_assert_cmpstr (c->uuid, ==, "11111111-2222-4333-8444-555555555555");
  g_assert_cmpuint (c->memory_mib, ==, 256);
  g_assert_cmpuint (c->cpus, ==, 1);
  g_assert_cmpint (c->boot_kind, ==, VIREO_BOOT_KERNEL);
  g_assert_cmpstr (c->kernel, ==, "/boot/bzImage");
  g_assert_cmpstr (c->initrd, ==, "initrd.gz");
  g_assert_cmpstr (c->cmdline, ==, "console=ttyS0");
  g_assert_false (c->serial_log);
  g_assert_cmpint (c->display, ==, VIREO_DISPLAY_NONE);
  g_assert_cmpuint (c->disks->len, ==, 2);
  d = g_ptr_array_index (c->disks, 0);
  g_assert_cmpstr (d->path, ==, "root.img");
  g_assert_cmpint (d->format, ==, VR_DISK_FORMAT_RAW);
  d = g_ptr_array_index (c->disks, 1);
  g_assert_cmpstr (d->path, ==, "data.qcow2");
  g_assert_cmpint (d->format, ==, VR_DISK_FORMAT_QCOW2);
  g_assert_cmpuint (c->nics->len, ==, 1);

  /* Written back as format 1, without the legacy group. */
  data = vireo_machine_config_to_data (c, NULL);
  g_assert_nonnull (strstr (data, "Version=1"));
  g_assert_null (strstr (data, "[Machine]"));
  back = vireo_machine_config_load_from_data (data, strlen (data), &error);
  g_assert_no_error (error);
  g_assert_cmpint (back->loaded_version, ==, 1);
  assert_configs_equal (c, back);

  /* Format 0 without a [Vireo] group; no uuid (one is made), no network. */
  g_clear_pointer (&c, vireo_machine_config_unref);
  c = vireo_machine_config_load_from_data (v0_conf_unversioned,
                                           sizeof v0_conf_unversioned - 1, &error);
  g_assert_no_error (error);
  g_assert_cmpint (c->loaded_version, ==, 0);
  g_assert_true (g_uuid_string_is_valid (c->uuid));
  g_assert_cmpuint (c->memory_mib, ==, 64);
  g_assert_cmpuint (c->nics->len, ==, 0);
}

static void
test_newer (void)
{
  static const char conf[] = "[Vireo]\nVersion=3\n[General]\nName=x\n";
  g_autoptr(GError) error = NULL;
  VireoMachineConfig *c;

  c = vireo_machine_config_load_from_data (conf, sizeof conf - 1, &error);
  g_assert_null (c);
  g_assert_error (error, VIREO_MACHINE_CONFIG_ERROR, VIREO_MACHINE_CONFIG_ERROR_NEWER);
  g_test_message ("%s", error->message);
  g_assert_nonnull (strstr (error->message, "newer Vireo (format 3)"));
  g_assert_nonnull (strstr (error->message, "reads up to 1"));
}

static void
test_damaged (void)
{
  static const struct
  {
    const char *data;
    int         code;
  } cases[] = {
    { "", VIREO_MACHINE_CONFIG_ERROR_PARSE },
    { "\x7f" "ELF\x02\x01\x01\0\0\0garbage\n\xff\xfe", VIREO_MACHINE_CONFIG_ERROR_PARSE },
    { "this is not a key file\n", VIREO_MACHINE_CONFIG_ERROR_PARSE },
    { "[Vireo]\nVersion=1\n[General]\nName=Half\nUu", VIREO_MACHINE_CONFIG_ERROR_PARSE },
    { "[Vireo]\nVersion=1\n[General]\nName=Half\nUuid=0b9e5f34-6e0b-4c1e-9f1e-2a3b4c5d6e7f\n",
      VIREO_MACHINE_CONFIG_ERROR_MISSING },
    { "[Vireo]\nVersion=one\n", VIREO_MACHINE_CONFIG_ERROR_INVALID },
    { "[General]\nName=No version\n", VIREO_MACHINE_CONFIG_ERROR_MISSING },
    { "[Vireo]\nVersion=1\n[General]\nUuid=0b9e5f34-6e0b-4c1e-9f1e-2a3b4c5d6e7f\n"
      "[Hardware]\nMemory=64\nCpus=1\n", VIREO_MACHINE_CONFIG_ERROR_MISSING },
    { "[Vireo]\nVersion=1\n[General]\nName=x\nUuid=0b9e5f34-6e0b-4c1e-9f1e-2a3b4c5d6e7f\n"
      "[Hardware]\nMemory=lots\nCpus=1\n", VIREO_MACHINE_CONFIG_ERROR_INVALID },
    { "[Vireo]\nVersion=1\n[General]\nName=x\nUuid=0b9e5f34-6e0b-4c1e-9f1e-2a3b4c5d6e7f\n"
      "[Hardware]\nMemory=64\nCpus=1\nDisplay=hologram\n", VIREO_MACHINE_CONFIG_ERROR_INVALID },
    { "[Vireo]\nVersion=1\n[General]\nName=x\nUuid=0b9e5f34-6e0b-4c1e-9f1e-2a3b4c5d6e7f\n"
      "[Hardware]\nMemory=64\nCpus=1\n[Disk 0]\nPath=a.img\nFormat=vdi\n",
      VIREO_MACHINE_CONFIG_ERROR_INVALID },
    { "[Vireo]\nVersion=1\n[General]\nName=x\nUuid=0b9e5f34-6e0b-4c1e-9f1e-2a3b4c5d6e7f\n"
      "[Hardware]\nMemory=64\nCpus=1\n[Disk 0]\nFormat=raw\n",
      VIREO_MACHINE_CONFIG_ERROR_MISSING },
  };

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autoptr(GError) error = NULL;
      VireoMachineConfig *c;

      c = vireo_machine_config_load_from_data (cases[i].data, strlen (cases[i].data), &error);
      g_assert_null (c);
      g_test_message ("case %u: %s", i, error->message);
      g_assert_error (error, VIREO_MACHINE_CONFIG_ERROR, cases[i].code);
    }
}

static void
test_validate (void)
{
  g_autoptr(VireoMachineConfig) c = vireo_machine_config_new ();
  g_autoptr(GError) error = NULL;
  g_autofree char *dir = g_dir_make_tmp ("vireo-validate-XXXXXX", NULL);
  g_autofree char *kernel = g_build_filename (dir, "vmlinuz", NULL);

  c->name = g_strdup ("Valid");
  c->kernel = g_strdup ("vmlinuz");
  c->memory_mib = 64;
  g_assert_true (vireo_machine_config_validate (c, NULL, &error));
  g_assert_no_error (error);

  /* The kernel is relative to the machine's folder and must exist there. */
  g_assert_false (vireo_machine_config_validate (c, dir, &error));
  g_assert_error (error, VIREO_MACHINE_CONFIG_ERROR, VIREO_MACHINE_CONFIG_ERROR_NOT_FOUND);
  g_test_message ("%s", error->message);
  g_clear_error (&error);
  g_file_set_contents (kernel, "k", 1, NULL);
  g_assert_true (vireo_machine_config_validate (c, dir, &error));
  g_assert_no_error (error);

#define EXPECT_INVALID(stmt, restore)                                                          \
  do                                                                                           \
    {                                                                                          \
      stmt;                                                                                    \
      g_assert_false (vireo_machine_config_validate (c, NULL, &error));                        \
      g_assert_nonnull (error);                                                                \
      g_test_message ("%s: %s", #stmt, error->message);                                        \
      g_clear_error (&error);                                                                  \
      restore;                                                                                 \
      g_assert_true (vireo_machine_config_validate (c, NULL, NULL));                           \
    }                                                                                          \
  while (0)

  EXPECT_INVALID (c->memory_mib = 0, c->memory_mib = 64);
  EXPECT_INVALID (c->memory_mib = 1, c->memory_mib = 64);
  EXPECT_INVALID (c->memory_mib = vireo_host_memory_mib () + 1, c->memory_mib = 64);
  EXPECT_INVALID (c->cpus = 0, c->cpus = 1);
  EXPECT_INVALID (c->cpus = vireo_host_cpu_count () + 1, c->cpus = 1);
  EXPECT_INVALID (g_free (c->name); c->name = g_strdup (""),
                  g_free (c->name); c->name = g_strdup ("Valid"));
  EXPECT_INVALID (g_free (c->name); c->name = g_strdup ("   "),
                  g_free (c->name); c->name = g_strdup ("Valid"));
  EXPECT_INVALID (g_free (c->name); c->name = g_strdup ("a/b"),
                  g_free (c->name); c->name = g_strdup ("Valid"));
  EXPECT_INVALID (g_free (c->name); c->name = g_strdup ("tab\there"),
                  g_free (c->name); c->name = g_strdup ("Valid"));
  EXPECT_INVALID (g_free (c->uuid); c->uuid = g_strdup ("../../etc"),
                  g_free (c->uuid); c->uuid = g_uuid_string_random ());
  EXPECT_INVALID (g_clear_pointer (&c->kernel, g_free), c->kernel = g_strdup ("vmlinuz"));
  EXPECT_INVALID (g_ptr_array_add (c->disks, vireo_disk_config_new ("x.vmdk", VR_DISK_FORMAT_VMDK)),
                  g_ptr_array_set_size (c->disks, 0));
  EXPECT_INVALID (g_ptr_array_add (c->nics, vireo_nic_config_new (VIREO_NET_TAP)),
                  g_ptr_array_set_size (c->nics, 1));
  {
    VireoNicConfig *nic = g_ptr_array_index (c->nics, 0);
    EXPECT_INVALID (nic->mac = g_strdup ("52:54:00:zz:00:01"), g_clear_pointer (&nic->mac, g_free));
  }
#undef EXPECT_INVALID

  g_unlink (kernel);
  g_rmdir (dir);
}

static void
test_to_vr (void)
{
  g_autoptr(VireoMachineConfig) c = full_config ();
  g_autoptr(GError) error = NULL;
  VrMachineConfig vr;

  vr_machine_config_init (&vr);
  c->boot_kind = VIREO_BOOT_KERNEL;
  c->serial_log = TRUE;
  g_assert_true (vireo_machine_config_to_vr (c, "/machines/x", &vr, &error));
  g_assert_no_error (error);
  g_assert_cmpstr (vr.name, ==, c->name);
  g_assert_cmpstr (vr.kernel, ==, "/boot/vmlinuz");
  g_assert_cmpstr (vr.initrd, ==, "/machines/x/initrd.img");
  g_assert_cmpstr (vr.cmdline, ==, c->cmdline);
  g_assert_cmpuint (vr.memory, ==, 96u << 20);
  g_assert_cmpuint (vr.cpus, ==, 1);
  g_assert_cmpint (vr.serial, ==, VR_SERIAL_PTY);
  g_assert_cmpstr (vr.serial_path, ==, "/machines/x/serial.log");
  g_assert_cmpint (vr.display, ==, VR_DISPLAY_DEVICE_VIRTIO_GPU);
  g_assert_false (vr.input);
  g_assert_false (vr.rng);
  /* A kernel boots without firmware; the ISO is in the CD/DVD drive, not a virtio disk. */
  g_assert_null (vr.firmware);
  g_assert_cmpstr (vr.cdrom, ==, "/home/user/Downloads/debian 12.iso");
  g_assert_true (vr.cdrom_drive);
  g_assert_cmpuint (vr.n_disks, ==, 2);
  g_assert_cmpstr (vr.disks[0].path, ==, "/machines/x/disk.qcow2");
  g_assert_cmpstr (vr.disks[0].format, ==, "qcow2");
  g_assert_false (vr.disks[0].readonly);
  g_assert_cmpstr (vr.disks[0].serial, ==, "VIREO-0001");
  g_assert_cmpstr (vr.disks[1].path, ==, "/machines/x/old.vmdk");
  g_assert_cmpstr (vr.disks[1].format, ==, "vmdk");
  g_assert_true (vr.disks[1].readonly);
  g_assert_nonnull (vr.nics);
  g_assert_cmpuint (g_strv_length (vr.nics), ==, 2);
  g_assert_cmpstr (vr.nics[0], ==,
                   "user,hostfwd=tcp::2222-:22,hostfwd=udp:127.0.0.1:5353-:53"
                   ",mac=52:54:00:aa:bb:cc");
  g_assert_cmpstr (vr.nics[1], ==, "tap:tap0");

  /* A second fill replaces everything (no leaks under valgrind/ASan). */
  c->serial_log = FALSE;
  g_ptr_array_set_size (c->nics, 0);
  g_assert_true (vireo_machine_config_to_vr (c, "/machines/x", &vr, &error));
  g_assert_null (vr.serial_path);
  g_assert_null (vr.nics);
  vr_machine_config_clear (&vr);
}

/* ---- booting through the firmware -------------------------------------------------------- */

static void
assert_order (const VrBootDevice *order, VrBootDevice a, VrBootDevice b)
{
  g_assert_cmpint (order[0], ==, a);
  g_assert_cmpint (order[1], ==, b);
  for (guint i = 2; i < VR_MAX_BOOT_DEVICES; i++)
    g_assert_cmpint (order[i], ==, VR_BOOT_DEVICE_END);
}

static void
test_boot_order_parse (void)
{
  static const char *const bad[] = { "", " ", "floppy", "cdrom,floppy", "disk,disk",
                                     "cdrom,,disk", "cdrom;disk", "cdrom,disk,cdrom", NULL };
  VrBootDevice order[VR_MAX_BOOT_DEVICES];
  g_autoptr(GError) error = NULL;

  g_assert_true (vireo_boot_order_parse ("cdrom,disk", order, &error));
  g_assert_no_error (error);
  assert_order (order, VR_BOOT_DEVICE_CDROM, VR_BOOT_DEVICE_DISK);
  g_assert_true (vireo_boot_order_parse ("disk,cdrom", order, NULL));
  assert_order (order, VR_BOOT_DEVICE_DISK, VR_BOOT_DEVICE_CDROM);
  g_assert_true (vireo_boot_order_parse ("disk", order, NULL));
  assert_order (order, VR_BOOT_DEVICE_DISK, VR_BOOT_DEVICE_END);
  g_assert_true (vireo_boot_order_parse ("cdrom", order, NULL));
  assert_order (order, VR_BOOT_DEVICE_CDROM, VR_BOOT_DEVICE_END);
  /* Spaces and case as a person might type them. */
  g_assert_true (vireo_boot_order_parse (" CDROM , Disk ", order, NULL));
  assert_order (order, VR_BOOT_DEVICE_CDROM, VR_BOOT_DEVICE_DISK);

  for (guint i = 0; bad[i]; i++)
    {
      g_assert_false (vireo_boot_order_parse (bad[i], order, &error));
      g_assert_error (error, VIREO_MACHINE_CONFIG_ERROR, VIREO_MACHINE_CONFIG_ERROR_INVALID);
      g_test_message ("“%s”: %s", bad[i], error->message);
      g_assert_nonnull (strstr (error->message, "cdrom,disk"));
      g_clear_error (&error);
      assert_order (order, VR_BOOT_DEVICE_END, VR_BOOT_DEVICE_END);
    }
  g_assert_false (vireo_boot_order_parse (NULL, order, NULL));
}

/* An installer machine as the wizard makes it: a new qcow2 disk, the ISO in the drive. */
static VireoMachineConfig *
installer_config (void)
{
  VireoMachineConfig *c = vireo_machine_config_new ();
  VireoDiskConfig *d;

  c->name = g_strdup ("Installer");
  c->memory_mib = 64;
  c->boot_kind = VIREO_BOOT_CDROM;
  c->boot_order = g_strdup ("cdrom,disk");
  g_ptr_array_add (c->disks, vireo_disk_config_new ("disk.qcow2", VR_DISK_FORMAT_QCOW2));
  d = vireo_disk_config_new ("/isos/debian.iso", VR_DISK_FORMAT_RAW);
  d->media = VIREO_DISK_MEDIA_CDROM;
  d->readonly = TRUE;
  g_ptr_array_add (c->disks, d);
  return c;
}

static void
test_to_vr_firmware (void)
{
  g_autoptr(VireoMachineConfig) c = installer_config ();
  g_autoptr(GError) error = NULL;
  g_autofree char *seabios = g_build_filename (SEABIOS_DIR, "bios.bin", NULL);
  VireoDiskConfig *cdrom = g_ptr_array_index (c->disks, 1);
  VrMachineConfig vr;

  vr_machine_config_init (&vr);
  /* A kernel left over from an earlier kind is not handed to the firmware. */
  c->kernel = g_strdup ("/boot/vmlinuz");
  c->cmdline = g_strdup ("quiet");
  g_assert_true (vireo_machine_config_to_vr (c, "/machines/x", &vr, &error));
  g_assert_no_error (error);
  g_assert_cmpstr (vr.firmware, ==, seabios);
  g_assert_cmpstr (vr.uuid, ==, c->uuid);
  g_assert_null (vr.kernel);
  g_assert_null (vr.cmdline);
  g_assert_cmpstr (vr.cdrom, ==, "/isos/debian.iso");
  g_assert_true (vr.cdrom_drive);
  assert_order (vr.boot_order, VR_BOOT_DEVICE_CDROM, VR_BOOT_DEVICE_DISK);
  g_assert_cmpuint (vr.n_disks, ==, 1);
  g_assert_cmpstr (vr.disks[0].path, ==, "/machines/x/disk.qcow2");
  g_assert_cmpstr (vr.disks[0].format, ==, "qcow2");
  g_assert_false (vr.disks[0].readonly);

  /* The boot order as stored, and each kind's default without one. */
  g_free (c->boot_order);
  c->boot_order = g_strdup ("disk,cdrom");
  g_assert_true (vireo_machine_config_to_vr (c, "/machines/x", &vr, &error));
  assert_order (vr.boot_order, VR_BOOT_DEVICE_DISK, VR_BOOT_DEVICE_CDROM);
  g_free (c->boot_order);
  c->boot_order = g_strdup ("disk");
  g_assert_true (vireo_machine_config_to_vr (c, "/machines/x", &vr, &error));
  assert_order (vr.boot_order, VR_BOOT_DEVICE_DISK, VR_BOOT_DEVICE_END);
  g_assert_true (vr.cdrom_drive);  /* still there, just not booted from */
  g_clear_pointer (&c->boot_order, g_free);
  g_assert_cmpstr (vireo_machine_config_get_boot_order (c), ==, "cdrom,disk");
  g_assert_true (vireo_machine_config_to_vr (c, "/machines/x", &vr, &error));
  assert_order (vr.boot_order, VR_BOOT_DEVICE_CDROM, VR_BOOT_DEVICE_DISK);
  c->boot_kind = VIREO_BOOT_DISK;
  g_assert_cmpstr (vireo_machine_config_get_boot_order (c), ==, "disk,cdrom");
  g_assert_true (vireo_machine_config_to_vr (c, "/machines/x", &vr, &error));
  assert_order (vr.boot_order, VR_BOOT_DEVICE_DISK, VR_BOOT_DEVICE_CDROM);
  g_assert_cmpstr (vr.firmware, ==, seabios);

  /* An empty drive is still a drive. */
  cdrom->ejected = TRUE;
  g_assert_true (vireo_machine_config_to_vr (c, "/machines/x", &vr, &error));
  g_assert_null (vr.cdrom);
  g_assert_true (vr.cdrom_drive);
  cdrom->ejected = FALSE;

  /* A firmware of the machine's own, relative to its folder. */
  c->firmware = g_strdup ("my-bios.bin");
  g_assert_true (vireo_machine_config_to_vr (c, "/machines/x", &vr, &error));
  g_assert_cmpstr (vr.firmware, ==, "/machines/x/my-bios.bin");
  g_clear_pointer (&c->firmware, g_free);

  /* Without the drive: Kind=disk boots the disks only, and nothing is in the drive. */
  g_ptr_array_remove_index (c->disks, 1);
  g_assert_cmpstr (vireo_machine_config_get_boot_order (c), ==, "disk");
  g_assert_true (vireo_machine_config_to_vr (c, "/machines/x", &vr, &error));
  assert_order (vr.boot_order, VR_BOOT_DEVICE_DISK, VR_BOOT_DEVICE_END);
  g_assert_null (vr.cdrom);
  g_assert_false (vr.cdrom_drive);
  /* A boot order naming a device the machine lacks: that device is left out. */
  c->boot_order = g_strdup ("cdrom,disk");
  g_assert_true (vireo_machine_config_to_vr (c, "/machines/x", &vr, &error));
  assert_order (vr.boot_order, VR_BOOT_DEVICE_DISK, VR_BOOT_DEVICE_END);

  /* A live CD: a drive and no disk at all. */
  g_ptr_array_set_size (c->disks, 0);
  cdrom = vireo_disk_config_new ("/isos/live.iso", VR_DISK_FORMAT_RAW);
  cdrom->media = VIREO_DISK_MEDIA_CDROM;
  g_ptr_array_add (c->disks, cdrom);
  c->boot_kind = VIREO_BOOT_CDROM;
  g_assert_true (vireo_machine_config_to_vr (c, "/machines/x", &vr, &error));
  g_assert_no_error (error);
  assert_order (vr.boot_order, VR_BOOT_DEVICE_CDROM, VR_BOOT_DEVICE_END);
  g_assert_cmpuint (vr.n_disks, ==, 0);
  g_assert_null (vr.disks);
  g_assert_cmpstr (vr.cdrom, ==, "/isos/live.iso");

  /* Back to a kernel: no firmware, no boot order. */
  c->boot_kind = VIREO_BOOT_KERNEL;
  g_assert_cmpstr (c->kernel, ==, "/boot/vmlinuz");   /* still set from the start */
  g_assert_true (vireo_machine_config_to_vr (c, "/machines/x", &vr, &error));
  g_assert_null (vr.firmware);
  g_assert_cmpstr (vr.kernel, ==, "/boot/vmlinuz");
  assert_order (vr.boot_order, VR_BOOT_DEVICE_END, VR_BOOT_DEVICE_END);
  g_assert_null (vireo_machine_config_get_boot_order (c));

  /* What cannot be said to the engine fails, as validation does: two drives. */
  c->boot_kind = VIREO_BOOT_CDROM;
  cdrom = vireo_disk_config_new ("/isos/other.iso", VR_DISK_FORMAT_RAW);
  cdrom->media = VIREO_DISK_MEDIA_CDROM;
  g_ptr_array_add (c->disks, cdrom);
  g_assert_false (vireo_machine_config_to_vr (c, "/machines/x", &vr, &error));
  g_assert_error (error, VIREO_MACHINE_CONFIG_ERROR, VIREO_MACHINE_CONFIG_ERROR_INVALID);
  g_clear_error (&error);
  vr_machine_config_clear (&vr);
}

/* The checks made when the machine starts (with its folder): what it boots from is there. */
static void
test_validate_boot (void)
{
  g_autoptr(VireoMachineConfig) c = installer_config ();
  g_autoptr(GError) error = NULL;
  g_autofree char *dir = g_dir_make_tmp ("vireo-validate-boot-XXXXXX", NULL);
  g_autofree char *disk = g_build_filename (dir, "disk.qcow2", NULL);
  g_autofree char *iso = g_build_filename (dir, "debian.iso", NULL);
  g_autofree char *bios = g_build_filename (dir, "bios.bin", NULL);
  VireoDiskConfig *cdrom = g_ptr_array_index (c->disks, 1);

  g_file_set_contents (disk, "d", 1, NULL);
  g_file_set_contents (iso, "i", 1, NULL);
  g_file_set_contents (bios, "b", 1, NULL);
  g_free (cdrom->path);
  cdrom->path = g_strdup (iso);
  /* Firmware of the machine's own, so that the test does not depend on the host's SeaBIOS. */
  c->firmware = g_strdup ("bios.bin");
  g_assert_true (vireo_machine_config_validate (c, dir, &error));
  g_assert_no_error (error);

#define EXPECT_START_ERROR(stmt, code, words, restore)                                        \
  do                                                                                           \
    {                                                                                          \
      stmt;                                                                                    \
      /* Settings like these can be saved (an edit in two steps)… */                          \
      g_assert_true (vireo_machine_config_validate (c, NULL, NULL));                          \
      /* …but the machine cannot start. */                                                   \
      g_assert_false (vireo_machine_config_validate (c, dir, &error));                         \
      g_assert_error (error, VIREO_MACHINE_CONFIG_ERROR, code);                                \
      g_test_message ("%s: %s", #stmt, error->message);                                        \
      g_assert_nonnull (strstr (error->message, words));                                       \
      g_clear_error (&error);                                                                  \
      restore;                                                                                 \
      g_assert_true (vireo_machine_config_validate (c, dir, NULL));                            \
    }                                                                                          \
  while (0)

  /* Starting from a CD/DVD image without a drive, or from a disk without one. */
  EXPECT_START_ERROR (cdrom->media = VIREO_DISK_MEDIA_DISK, VIREO_MACHINE_CONFIG_ERROR_MISSING,
                      "no CD/DVD drive", cdrom->media = VIREO_DISK_MEDIA_CDROM);
  {
    g_autoptr(VireoDiskConfig) saved = vireo_disk_config_copy (cdrom);

    EXPECT_START_ERROR (g_ptr_array_remove_index (c->disks, 1),
                        VIREO_MACHINE_CONFIG_ERROR_MISSING, "no CD/DVD drive",
                        g_ptr_array_add (c->disks, vireo_disk_config_copy (saved)));
  }
  cdrom = g_ptr_array_index (c->disks, 1);
  c->boot_kind = VIREO_BOOT_DISK;
  EXPECT_START_ERROR (g_ptr_array_remove_index (c->disks, 0),
                      VIREO_MACHINE_CONFIG_ERROR_MISSING, "from a disk, but it has none",
                      g_ptr_array_insert (c->disks, 0,
                                          vireo_disk_config_new ("disk.qcow2",
                                                                 VR_DISK_FORMAT_QCOW2)));
  cdrom = g_ptr_array_index (c->disks, 1);
  c->boot_kind = VIREO_BOOT_CDROM;

  /* One drive only. */
  {
    VireoDiskConfig *second = vireo_disk_config_copy (cdrom);

    EXPECT_START_ERROR (g_ptr_array_add (c->disks, second), VIREO_MACHINE_CONFIG_ERROR_INVALID,
                        "disks 2 and 3", g_ptr_array_remove_index (c->disks, 2));
  }

  /* A boot order that cannot be read. */
  EXPECT_START_ERROR (g_free (c->boot_order); c->boot_order = g_strdup ("floppy"),
                      VIREO_MACHINE_CONFIG_ERROR_INVALID, "“floppy”",
                      g_free (c->boot_order); c->boot_order = g_strdup ("cdrom,disk"));

  /* Missing files, each named: the firmware, the image in the drive. */
  g_unlink (bios);
  g_assert_false (vireo_machine_config_validate (c, dir, &error));
  g_assert_error (error, VIREO_MACHINE_CONFIG_ERROR, VIREO_MACHINE_CONFIG_ERROR_NOT_FOUND);
  g_test_message ("%s", error->message);
  g_assert_nonnull (strstr (error->message, bios));
  g_clear_error (&error);
  g_clear_pointer (&c->firmware, g_free);
  g_free (c->firmware);
  c->firmware = g_build_filename (dir, "nowhere", "bios.bin", NULL);
  g_assert_false (vireo_machine_config_validate (c, dir, &error));
  g_assert_error (error, VIREO_MACHINE_CONFIG_ERROR, VIREO_MACHINE_CONFIG_ERROR_NOT_FOUND);
  g_assert_nonnull (strstr (error->message, "nowhere/bios.bin"));
  g_clear_error (&error);
  /* A kernel machine needs no firmware. */
  c->boot_kind = VIREO_BOOT_KERNEL;
  c->kernel = g_strdup (disk);
  g_assert_true (vireo_machine_config_validate (c, dir, &error));
  g_assert_no_error (error);
  c->boot_kind = VIREO_BOOT_CDROM;
  g_file_set_contents (bios, "b", 1, NULL);
  g_free (c->firmware);
  c->firmware = g_strdup (bios);

  g_unlink (iso);
  g_assert_false (vireo_machine_config_validate (c, dir, &error));
  g_assert_error (error, VIREO_MACHINE_CONFIG_ERROR, VIREO_MACHINE_CONFIG_ERROR_NOT_FOUND);
  g_test_message ("%s", error->message);
  g_assert_nonnull (strstr (error->message, "CD/DVD image"));
  g_assert_nonnull (strstr (error->message, iso));
  g_clear_error (&error);
  /* Ejected, the image is not needed (a Kind=cdrom machine then tries its disks). */
  cdrom->ejected = TRUE;
  g_assert_true (vireo_machine_config_validate (c, dir, &error));
  g_assert_no_error (error);

  /* The default firmware is SeaBIOS where Vireo was built to find it. */
  g_clear_pointer (&c->firmware, g_free);
  {
    g_autofree char *seabios = g_build_filename (SEABIOS_DIR, "bios.bin", NULL);
    g_autofree char *fw = vireo_machine_config_dup_firmware (c);

    g_assert_cmpstr (fw, ==, seabios);
    if (g_file_test (seabios, G_FILE_TEST_IS_REGULAR))
      g_assert_true (vireo_machine_config_validate (c, dir, NULL));
    else
      {
        g_assert_false (vireo_machine_config_validate (c, dir, &error));
        g_test_message ("%s", error->message);
        g_assert_nonnull (strstr (error->message, "seabios"));
        g_clear_error (&error);
      }
  }
#undef EXPECT_START_ERROR

  g_unlink (disk);
  g_unlink (bios);
  g_rmdir (dir);
}

/* An empty drive through a save and a load; Ejected means something for a drive only. */
static void
test_ejected (void)
{
  g_autoptr(VireoMachineConfig) c = installer_config ();
  g_autoptr(VireoMachineConfig) back = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *data = NULL;
  VireoDiskConfig *cdrom = vireo_machine_config_get_cdrom (c);

  g_assert_true (cdrom == g_ptr_array_index (c->disks, 1));
  /* Full, it writes no Ejected key. */
  data = vireo_machine_config_to_data (c, NULL);
  g_assert_null (strstr (data, "Ejected"));
  g_clear_pointer (&data, g_free);

  cdrom->ejected = TRUE;
  data = vireo_machine_config_to_data (c, NULL);
  g_test_message ("%s", data);
  g_assert_nonnull (strstr (data, "[Disk 1]\nPath=/isos/debian.iso\nFormat=raw\nReadOnly=true\n"
                                  "Media=cdrom\nEjected=true\n"));
  back = vireo_machine_config_load_from_data (data, strlen (data), &error);
  g_assert_no_error (error);
  g_assert_true (vireo_machine_config_get_cdrom (back)->ejected);
  g_assert_cmpstr (vireo_machine_config_get_cdrom (back)->path, ==, "/isos/debian.iso");
  {
    g_autoptr(VireoMachineConfig) copy = vireo_machine_config_copy (back);

    assert_configs_equal (c, copy);
  }

  /* On a disk that is not a drive, it is ignored (and dropped). */
  {
    static const char conf[] =
      "[Vireo]\nVersion=1\n"
      "[General]\nName=x\nUuid=0b9e5f34-6e0b-4c1e-9f1e-2a3b4c5d6e7f\n"
      "[Boot]\nKind=disk\n[Hardware]\nMemory=64\nCpus=1\n"
      "[Disk 0]\nPath=a.qcow2\nFormat=qcow2\nEjected=true\n";
    g_autoptr(VireoMachineConfig) d = vireo_machine_config_load_from_data (conf, sizeof conf - 1,
                                                                           &error);
    g_autofree char *again = NULL;

    g_assert_no_error (error);
    g_assert_false (((VireoDiskConfig *) g_ptr_array_index (d->disks, 0))->ejected);
    g_assert_null (vireo_machine_config_get_cdrom (d));
    again = vireo_machine_config_to_data (d, NULL);
    g_assert_null (strstr (again, "Ejected"));
  }
  {
    static const char conf[] =
      "[Vireo]\nVersion=1\n"
      "[General]\nName=x\nUuid=0b9e5f34-6e0b-4c1e-9f1e-2a3b4c5d6e7f\n"
      "[Hardware]\nMemory=64\nCpus=1\n"
      "[Disk 0]\nPath=a.iso\nFormat=raw\nMedia=cdrom\nEjected=maybe\n";
    g_assert_null (vireo_machine_config_load_from_data (conf, sizeof conf - 1, &error));
    g_assert_error (error, VIREO_MACHINE_CONFIG_ERROR, VIREO_MACHINE_CONFIG_ERROR_INVALID);
    g_clear_error (&error);
  }
}

/* Files written before the firmware worked still load, unchanged, and now boot. */
static void
test_older_files (void)
{
  /* What the wizard wrote for an installer… */
  static const char installer[] =
    "[Vireo]\nVersion=1\n"
    "[General]\nName=Debian 12\nUuid=0b9e5f34-6e0b-4c1e-9f1e-2a3b4c5d6e7f\n"
    "Created=2024-05-17T09:30:12Z\nSource=Installer image debian-12.iso\n"
    "[Boot]\nKind=cdrom\nBootOrder=cdrom,disk\n"
    "[Hardware]\nMemory=2048\nCpus=2\nDisplay=std\nInput=true\nRng=true\nSerialLog=true\n"
    "[Disk 0]\nPath=disk.qcow2\nFormat=qcow2\nReadOnly=false\nMedia=disk\n"
    "[Disk 1]\nPath=/isos/debian-12.iso\nFormat=raw\nReadOnly=true\nMedia=cdrom\n"
    "[Network 0]\nKind=user\n";
  /* …for an existing disk image, and a hand-written one with neither BootOrder nor Media. */
  static const char disk[] =
    "[Vireo]\nVersion=1\n"
    "[General]\nName=Fedora\nUuid=1b9e5f34-6e0b-4c1e-9f1e-2a3b4c5d6e7f\n"
    "[Boot]\nKind=disk\n"
    "[Hardware]\nMemory=1024\nCpus=1\n"
    "[Disk 0]\nPath=/images/fedora.qcow2\nFormat=qcow2\n";
  g_autoptr(GError) error = NULL;
  g_autoptr(VireoMachineConfig) c = NULL;
  g_autofree char *data = NULL;
  VrMachineConfig vr;

  vr_machine_config_init (&vr);
  c = vireo_machine_config_load_from_data (installer, sizeof installer - 1, &error);
  g_assert_no_error (error);
  g_assert_cmpint (c->loaded_version, ==, 1);
  g_assert_cmpint (c->boot_kind, ==, VIREO_BOOT_CDROM);
  g_assert_false (vireo_machine_config_get_cdrom (c)->ejected);
  g_assert_true (vireo_machine_config_validate (c, NULL, &error));
  g_assert_true (vireo_machine_config_to_vr (c, "/m", &vr, &error));
  g_assert_no_error (error);
  g_assert_nonnull (vr.firmware);
  g_assert_cmpstr (vr.cdrom, ==, "/isos/debian-12.iso");
  assert_order (vr.boot_order, VR_BOOT_DEVICE_CDROM, VR_BOOT_DEVICE_DISK);
  g_assert_cmpuint (vr.n_disks, ==, 1);
  /* Written back, the same format and the same keys. */
  data = vireo_machine_config_to_data (c, NULL);
  g_assert_nonnull (strstr (data, "[Vireo]\nVersion=1\n"));
  g_assert_nonnull (strstr (data, "[Boot]\nKind=cdrom\nBootOrder=cdrom,disk\n"));
  g_assert_null (strstr (data, "Ejected"));
  g_clear_pointer (&c, vireo_machine_config_unref);

  c = vireo_machine_config_load_from_data (disk, sizeof disk - 1, &error);
  g_assert_no_error (error);
  g_assert_cmpint (c->boot_kind, ==, VIREO_BOOT_DISK);
  g_assert_null (c->boot_order);
  g_assert_null (vireo_machine_config_get_cdrom (c));
  g_assert_true (vireo_machine_config_to_vr (c, "/m", &vr, &error));
  g_assert_no_error (error);
  g_assert_nonnull (vr.firmware);
  g_assert_false (vr.cdrom_drive);
  assert_order (vr.boot_order, VR_BOOT_DEVICE_DISK, VR_BOOT_DEVICE_END);
  g_assert_cmpstr (vr.disks[0].path, ==, "/images/fedora.qcow2");
  vr_machine_config_clear (&vr);
}

static void
test_atomic_file (void)
{
  g_autofree char *dir = g_dir_make_tmp ("vireo-atomic-XXXXXX", NULL);
  g_autofree char *path = g_build_filename (dir, "machine.conf", NULL);
  g_autofree char *stale = g_build_filename (dir, ".machine.conf.tmp-Ab12Cd", NULL);
  g_autofree char *other = g_build_filename (dir, ".hidden", NULL);
  g_autofree char *text = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(GDir) d = NULL;
  const char *name;

  g_assert_true (vireo_atomic_file_write (path, "one\n", 4, &error));
  g_assert_no_error (error);
  g_assert_true (vireo_atomic_file_write (path, "two\n", 4, &error));
  g_assert_true (g_file_get_contents (path, &text, NULL, NULL));
  g_assert_cmpstr (text, ==, "two\n");

  /* Nothing else is left in the folder. */
  d = g_dir_open (dir, 0, NULL);
  while ((name = g_dir_read_name (d)) != NULL)
    g_assert_cmpstr (name, ==, "machine.conf");
  g_clear_pointer (&d, g_dir_close);

  /* A crash between write and rename leaves a temporary file: cleaned, others kept. */
  g_file_set_contents (stale, "half a fi", -1, NULL);
  g_file_set_contents (other, "mine", -1, NULL);
  g_assert_true (vireo_atomic_file_is_temp_name (".machine.conf.tmp-Ab12Cd"));
  g_assert_true (vireo_atomic_file_is_temp_name (".thumbnail.png.tmp-000000"));
  g_assert_false (vireo_atomic_file_is_temp_name ("machine.conf"));
  g_assert_false (vireo_atomic_file_is_temp_name (".hidden"));
  g_assert_false (vireo_atomic_file_is_temp_name (".tmp-abcdef"));
  g_assert_cmpuint (vireo_atomic_file_clean_temps (dir), ==, 1);
  g_assert_false (g_file_test (stale, G_FILE_TEST_EXISTS));
  g_assert_true (g_file_test (other, G_FILE_TEST_EXISTS));

  /* A folder that does not exist: an error, nothing created. */
  {
    g_autofree char *bad = g_build_filename (dir, "nope", "machine.conf", NULL);
    g_assert_false (vireo_atomic_file_write (bad, "x", 1, &error));
    g_assert_error (error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND);
    g_test_message ("%s", error->message);
  }

  g_unlink (path);
  g_unlink (other);
  g_rmdir (dir);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, G_TEST_OPTION_ISOLATE_DIRS, NULL);

  g_test_add_func ("/config/round-trip", test_round_trip);
  g_test_add_func ("/config/unknown-keys", test_unknown_keys);
  g_test_add_func ("/config/migrate-v0", test_migrate_v0);
  g_test_add_func ("/config/newer", test_newer);
  g_test_add_func ("/config/damaged", test_damaged);
  g_test_add_func ("/config/validate", test_validate);
  g_test_add_func ("/config/to-vr", test_to_vr);
  g_test_add_func ("/config/boot-order", test_boot_order_parse);
  g_test_add_func ("/config/to-vr-firmware", test_to_vr_firmware);
  g_test_add_func ("/config/validate-boot", test_validate_boot);
  g_test_add_func ("/config/ejected", test_ejected);
  g_test_add_func ("/config/older-files", test_older_files);
  g_test_add_func ("/config/atomic-file", test_atomic_file);
  return g_test_run ();
}
