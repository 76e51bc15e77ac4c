/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * machine.conf: every key through a save and a load, unknown keys kept, migration from
 * format 0, refusal of newer formats, damaged files, validation, the engine's config, and
 * the atomic write helper.
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
  EXPECT_INVALID (c->boot_kind = VIREO_BOOT_DISK, c->boot_kind = VIREO_BOOT_KERNEL);
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
  /* Firmware boot is not there yet: a clear error. */
  g_assert_false (vireo_machine_config_to_vr (c, "/machines/x", &vr, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED);
  g_clear_error (&error);

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
  g_assert_cmpuint (vr.n_disks, ==, 3);
  g_assert_cmpstr (vr.disks[0].path, ==, "/machines/x/disk.qcow2");
  g_assert_cmpstr (vr.disks[0].format, ==, "qcow2");
  g_assert_false (vr.disks[0].readonly);
  g_assert_cmpstr (vr.disks[0].serial, ==, "VIREO-0001");
  g_assert_cmpstr (vr.disks[1].path, ==, "/home/user/Downloads/debian 12.iso");
  g_assert_true (vr.disks[1].readonly);
  g_assert_cmpstr (vr.disks[2].format, ==, "vmdk");
  g_assert_true (vr.disks[2].readonly);
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
  g_test_add_func ("/config/atomic-file", test_atomic_file);
  return g_test_run ();
}
