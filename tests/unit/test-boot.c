/* SPDX-License-Identifier: GPL-3.0-or-later */

#include <asm/bootparam.h>
#include <elf.h>
#include <glib.h>
#include <glib/gstdio.h>
#include <string.h>

#include "boot/boot.h"
#include "vr-machine-private.h"
#include "vr-memory.h"

/* Synthetic kernels, built byte by byte, so every loader path and every check is exercised
 * without a real kernel. */

static char *tmpdir;

static char *
write_file (const char *name, const void *data, gsize len)
{
  char *path = g_build_filename (tmpdir, name, NULL);

  g_assert_true (g_file_set_contents (path, data, (gssize) len, NULL));
  return path;
}

/* An ELF64 with one PT_LOAD of @code_len bytes at @paddr (+ @bss), and optionally a PVH note. */
static GByteArray *
make_elf64 (uint64_t paddr, gsize code_len, gsize bss, bool pvh_note, uint64_t entry)
{
  GByteArray *a = g_byte_array_new ();
  Elf64_Ehdr eh = { 0 };
  Elf64_Phdr ph[2] = { 0 };
  struct { uint32_t namesz, descsz, type; char name[4]; uint32_t desc; } note = {
    4, 4, 18, "Xen", (uint32_t) entry
  };
  gsize hdrs = sizeof eh + sizeof ph, code_off = 0x1000;
  g_autofree uint8_t *code = g_malloc (code_len);

  memcpy (eh.e_ident, ELFMAG, SELFMAG);
  eh.e_ident[EI_CLASS] = ELFCLASS64;
  eh.e_ident[EI_DATA] = ELFDATA2LSB;
  eh.e_ident[EI_VERSION] = EV_CURRENT;
  eh.e_type = ET_EXEC;
  eh.e_machine = EM_X86_64;
  eh.e_version = EV_CURRENT;
  eh.e_entry = entry;
  eh.e_phoff = sizeof eh;
  eh.e_ehsize = sizeof eh;
  eh.e_phentsize = sizeof (Elf64_Phdr);
  eh.e_phnum = pvh_note ? 2 : 1;

  ph[0] = (Elf64_Phdr) { .p_type = PT_LOAD, .p_offset = code_off, .p_paddr = paddr,
                         .p_vaddr = paddr, .p_filesz = code_len, .p_memsz = code_len + bss };
  ph[1] = (Elf64_Phdr) { .p_type = PT_NOTE, .p_offset = hdrs, .p_filesz = sizeof note };

  for (gsize i = 0; i < code_len; i++)
    code[i] = (uint8_t) (i * 7 + 1);

  g_byte_array_append (a, (guint8 *) &eh, sizeof eh);
  g_byte_array_append (a, (guint8 *) ph, sizeof ph);
  g_byte_array_append (a, (guint8 *) &note, sizeof note);
  g_byte_array_set_size (a, code_off);
  memset (a->data + hdrs + sizeof note, 0, code_off - hdrs - sizeof note);
  g_byte_array_append (a, code, code_len);
  return a;
}

static GByteArray *
make_bzimage (uint16_t version, uint8_t xloadflags, uint32_t init_size, gsize payload)
{
  GByteArray *a = g_byte_array_new ();
  const unsigned setup_sects = 1;
  struct setup_header hdr = { 0 };

  g_byte_array_set_size (a, (setup_sects + 1) * 512 + payload);
  memset (a->data, 0, a->len);
  hdr.setup_sects = setup_sects;
  hdr.boot_flag = 0xaa55;
  hdr.jump = 0x66eb;  /* jmp to 0x268: the header is 0x268 - 0x202 + 0x202 bytes */
  hdr.header = 0x53726448;
  hdr.version = version;
  hdr.loadflags = LOADED_HIGH;
  hdr.xloadflags = xloadflags;
  hdr.cmdline_size = 2048;
  hdr.initrd_addr_max = 0x37ffffff;
  hdr.init_size = init_size;
  memcpy (a->data + 0x1f1, &hdr, sizeof hdr);
  a->data[(setup_sects + 1) * 512] = 0xe9;  /* first byte of the protected-mode kernel */
  return a;
}

static VrMemory *
new_memory (uint64_t size)
{
  g_autoptr (GError) error = NULL;
  VrMemory *mem = vr_memory_new (size, &error);

  g_assert_no_error (error);
  return mem;
}

static void
test_boot_pvh (void)
{
  g_autoptr (GByteArray) elf = make_elf64 (0x200000, 0x3000, 0x1000, true, 0x200010);
  g_autofree char *path = write_file ("pvh.elf", elf->data, elf->len);
  g_autofree char *initrd = write_file ("initrd", "INITRD-DATA", 11);
  g_autoptr (GError) error = NULL;
  g_autoptr (VrBootImage) image = vr_boot_image_new (path, initrd, 64u << 20, &error);
  VrMemory *mem = new_memory (64u << 20);
  VrBootCpuState cpu;
  uint32_t info[14];
  uint8_t byte;
  uint64_t mod[4];
  char buf[32];

  g_assert_no_error (error);
  g_assert_cmpint (vr_boot_image_get_protocol (image), ==, VR_BOOT_PVH);
  g_assert_true (vr_boot_image_load (image, mem, "console=ttyS0", 0xe0000, &cpu, &error));
  g_assert_no_error (error);

  g_assert_cmpint (cpu.mode, ==, VR_CPU_MODE_PROTECTED32);
  g_assert_cmphex (cpu.rip, ==, 0x200010);
  g_assert_cmphex (cpu.rbx, ==, VR_BOOT_INFO_ADDR);

  vr_memory_read (mem, VR_BOOT_INFO_ADDR, info, sizeof info);
  g_assert_cmphex (info[0], ==, 0x336ec578);           /* magic */
  g_assert_cmpuint (info[1], ==, 1);                    /* version */
  g_assert_cmpuint (info[3], ==, 1);                    /* nr_modules */
  g_assert_cmphex (info[8] | (uint64_t) info[9] << 32, ==, 0xe0000);  /* rsdp */
  g_assert_cmpuint (info[12], ==, 4);                   /* memmap entries */
  vr_memory_read (mem, info[6], buf, sizeof "console=ttyS0");
  g_assert_cmpstr (buf, ==, "console=ttyS0");
  vr_memory_read (mem, info[4], mod, sizeof mod);
  g_assert_cmpuint (mod[1], ==, 11);
  vr_memory_read (mem, mod[0], buf, 11);
  g_assert_cmpmem (buf, 11, "INITRD-DATA", 11);
  g_assert_cmpuint (mod[0] & 0xfff, ==, 0);
  g_assert_cmpuint (mod[0], >=, 0x204000);

  /* Segment contents and zeroed bss. */
  vr_memory_read (mem, 0x200001, &byte, 1);
  g_assert_cmpuint (byte, ==, 8);
  vr_memory_write (mem, 0x203800, "x", 1);
  g_assert_true (vr_boot_image_load (image, mem, NULL, 0xe0000, &cpu, NULL));
  vr_memory_read (mem, 0x203800, &byte, 1);
  g_assert_cmpuint (byte, ==, 0);
  vr_memory_free (mem);
}

static void
test_boot_linux (void)
{
  g_autoptr (GByteArray) bz = make_bzimage (0x020f, XLF_KERNEL_64, 0x800000, 0x4000);
  g_autofree char *path = write_file ("bzImage", bz->data, bz->len);
  g_autofree char *initrd = write_file ("initrd.img", "0123456789", 10);
  g_autoptr (GError) error = NULL;
  g_autoptr (VrBootImage) image = vr_boot_image_new (path, initrd, 128u << 20, &error);
  VrMemory *mem = new_memory (128u << 20);
  g_autofree struct boot_params *bp = g_new0 (struct boot_params, 1);
  VrBootCpuState cpu;
  uint64_t pml4e, pde;
  char buf[16];

  g_assert_no_error (error);
  g_assert_cmpint (vr_boot_image_get_protocol (image), ==, VR_BOOT_LINUX);
  g_assert_true (vr_boot_image_load (image, mem, "quiet", 0xe0000, &cpu, &error));
  g_assert_no_error (error);

  g_assert_cmpint (cpu.mode, ==, VR_CPU_MODE_LONG64);
  g_assert_cmphex (cpu.rip, ==, 0x100200);
  g_assert_cmphex (cpu.rsi, ==, VR_BOOT_PARAMS_ADDR);
  vr_memory_read (mem, VR_BOOT_PARAMS_ADDR, bp, sizeof *bp);
  g_assert_cmphex (bp->hdr.header, ==, 0x53726448);
  g_assert_cmphex (bp->hdr.type_of_loader, ==, 0xff);
  g_assert_cmphex (bp->acpi_rsdp_addr, ==, 0xe0000);
  g_assert_cmpuint (bp->e820_entries, ==, 4);
  g_assert_cmphex (bp->e820_table[3].addr + bp->e820_table[3].size, ==, 128u << 20);
  g_assert_cmpuint (bp->hdr.ramdisk_size, ==, 10);
  vr_memory_read (mem, bp->hdr.ramdisk_image, buf, 10);
  g_assert_cmpmem (buf, 10, "0123456789", 10);
  g_assert_cmpuint (bp->hdr.ramdisk_image, >=, 0x100000 + 0x800000);
  vr_memory_read (mem, bp->hdr.cmd_line_ptr, buf, 6);
  g_assert_cmpstr (buf, ==, "quiet");
  vr_memory_read (mem, 0x100000, buf, 1);
  g_assert_cmphex ((uint8_t) buf[0], ==, 0xe9);

  /* Identity page tables: 2 MiB pages covering 4 GiB. */
  vr_memory_read (mem, cpu.cr3, &pml4e, 8);
  g_assert_cmphex (pml4e & 1, ==, 1);
  vr_memory_read (mem, VR_BOOT_PGTABLE + 0x2000 + 3 * 0x1000 + 511 * 8, &pde, 8);
  g_assert_cmphex (pde & ~0xfffull, ==, 0xffe00000);
  vr_memory_free (mem);
}

static void
test_boot_linux_cmdline_too_long (void)
{
  g_autoptr (GByteArray) bz = make_bzimage (0x020f, XLF_KERNEL_64, 0x100000, 0x1000);
  g_autofree char *path = write_file ("bzImage-cmdline", bz->data, bz->len);
  g_autofree char *longline = g_strnfill (4000, 'a');
  g_autoptr (VrBootImage) image = vr_boot_image_new (path, NULL, 64u << 20, NULL);
  g_autoptr (GError) error = NULL;
  VrMemory *mem = new_memory (64u << 20);
  VrBootCpuState cpu;

  g_assert_nonnull (image);
  g_assert_false (vr_boot_image_load (image, mem, longline, 0, &cpu, &error));
  g_assert_error (error, VR_ERROR, VR_ERROR_INVALID_CONFIG);
  vr_memory_free (mem);
}

static void
test_boot_multiboot_kludge (void)
{
  /* A flat binary with an a.out-kludge header at offset 0x40, loaded at 1 MiB. */
  uint8_t img[0x2000] = { 0 };
  uint32_t hdr[8] = { 0x1badb002, 0x00010003, 0, 0x100040, 0x100000, 0x101000, 0x102000,
                      0x100080 };
  g_autofree char *path = NULL;
  g_autoptr (GError) error = NULL;
  g_autoptr (VrBootImage) image = NULL;
  VrMemory *mem = new_memory (32u << 20);
  VrBootCpuState cpu;
  uint32_t mbi[12];

  hdr[2] = (uint32_t) -(hdr[0] + hdr[1]);
  memcpy (img + 0x40, hdr, sizeof hdr);
  img[0x80] = 0xf4;
  img[0x1800] = 0xaa;  /* beyond load_end_addr: must not be loaded (bss is zero) */
  path = write_file ("mb.bin", img, sizeof img);
  image = vr_boot_image_new (path, NULL, 32u << 20, &error);
  g_assert_no_error (error);
  g_assert_cmpint (vr_boot_image_get_protocol (image), ==, VR_BOOT_MULTIBOOT);
  g_assert_true (vr_boot_image_load (image, mem, "mb", 0xe0000, &cpu, &error));
  g_assert_cmphex (cpu.rip, ==, 0x100080);
  g_assert_cmphex (cpu.rax, ==, 0x2badb002);
  vr_memory_read (mem, cpu.rbx, mbi, sizeof mbi);
  g_assert_cmphex (mbi[0] & 0x45, ==, 0x45);   /* MEM, CMDLINE, MMAP */
  g_assert_cmpuint (mbi[1], ==, 639);
  g_assert_cmpuint (mbi[2], ==, 31 * 1024);
  {
    uint8_t b;

    vr_memory_read (mem, 0x100080, &b, 1);
    g_assert_cmphex (b, ==, 0xf4);
    vr_memory_read (mem, 0x101800, &b, 1);
    g_assert_cmphex (b, ==, 0);
  }
  vr_memory_free (mem);
}

typedef struct
{
  const char *name;
  VrError     code;
  const char *needle;  /* a word the message must contain */
} BadCase;

static void
expect_bad (const char *path, const char *initrd, uint64_t ram, VrError code, const char *needle)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (VrBootImage) image = vr_boot_image_new (path, initrd, ram, &error);

  g_assert_null (image);
  g_assert_error (error, VR_ERROR, (gint) code);
  g_test_message ("%s → %s", path, error->message);
  /* The message names the file and says why. */
  g_assert_nonnull (strstr (error->message, initrd && code == VR_ERROR_BAD_INITRD ? initrd : path));
  g_assert_nonnull (strstr (error->message, needle));
}

static void
test_boot_bad_images (void)
{
  g_autoptr (GByteArray) elf = make_elf64 (0x200000, 0x3000, 0, true, 0x200000);
  g_autoptr (GByteArray) low = make_elf64 (0x1000, 0x100, 0, true, 0x1000);
  g_autoptr (GByteArray) huge = make_elf64 (0x200000, 0x1000, 64u << 20, true, 0x200000);
  g_autoptr (GByteArray) noentry = make_elf64 (0x200000, 0x1000, 0, false, 0x200000);
  g_autoptr (GByteArray) oldbz = make_bzimage (0x0206, 0, 0, 0x1000);
  g_autoptr (GByteArray) bz32 = make_bzimage (0x020f, 0, 0x100000, 0x1000);
  g_autoptr (GByteArray) bigbz = make_bzimage (0x020f, XLF_KERNEL_64, 200u << 20, 0x1000);
  g_autoptr (GByteArray) okbz = make_bzimage (0x020f, XLF_KERNEL_64, 0x100000, 0x1000);
  uint8_t garbage[4096];
  g_autofree char *p_missing = g_build_filename (tmpdir, "does-not-exist", NULL);
  g_autofree char *p_empty = write_file ("empty", "", 0);
  g_autofree char *p_garbage = NULL;
  g_autofree char *p_trunc = write_file ("truncated.elf", elf->data, 200);
  g_autofree char *p_trunc_seg = write_file ("truncated-seg.elf", elf->data, 0x1800);
  g_autofree char *p_low = write_file ("low.elf", low->data, low->len);
  g_autofree char *p_huge = write_file ("huge.elf", huge->data, huge->len);
  g_autofree char *p_noentry = write_file ("plain.elf", noentry->data, noentry->len);
  g_autofree char *p_oldbz = write_file ("old-bzImage", oldbz->data, oldbz->len);
  g_autofree char *p_bz32 = write_file ("bzImage32", bz32->data, bz32->len);
  g_autofree char *p_bigbz = write_file ("big-bzImage", bigbz->data, bigbz->len);
  g_autofree char *p_trunc_bz = write_file ("trunc-bzImage", okbz->data, 0x300);
  g_autofree char *p_okbz = write_file ("ok-bzImage", okbz->data, okbz->len);
  g_autofree char *p_bigrd = NULL;
  g_autofree uint8_t *bigrd = g_malloc0 (40u << 20);

  for (gsize i = 0; i < sizeof garbage; i++)
    garbage[i] = (uint8_t) g_test_rand_int ();
  garbage[0] = 0;  /* never an accidental ELF magic */
  p_garbage = write_file ("garbage", garbage, sizeof garbage);
  p_bigrd = write_file ("big-initrd", bigrd, 40u << 20);

  expect_bad (p_missing, NULL, 64u << 20, VR_ERROR_BAD_KERNEL, "Cannot read");
  expect_bad (tmpdir, NULL, 64u << 20, VR_ERROR_BAD_KERNEL, "directory");
  expect_bad (p_empty, NULL, 64u << 20, VR_ERROR_BAD_KERNEL, "empty");
  expect_bad (p_garbage, NULL, 64u << 20, VR_ERROR_BAD_KERNEL, "not a kernel");
  expect_bad (p_trunc, NULL, 64u << 20, VR_ERROR_BAD_KERNEL, "truncated");
  expect_bad (p_trunc_seg, NULL, 64u << 20, VR_ERROR_BAD_KERNEL, "truncated");
  expect_bad (p_low, NULL, 64u << 20, VR_ERROR_BAD_KERNEL, "below 1 MiB");
  expect_bad (p_huge, NULL, 64u << 20, VR_ERROR_BAD_KERNEL, "does not fit");
  expect_bad (p_noentry, NULL, 64u << 20, VR_ERROR_BAD_KERNEL, "without a PVH note");
  expect_bad (p_oldbz, NULL, 64u << 20, VR_ERROR_BAD_KERNEL, "protocol");
  expect_bad (p_bz32, NULL, 64u << 20, VR_ERROR_BAD_KERNEL, "64-bit");
  expect_bad (p_bigbz, NULL, 64u << 20, VR_ERROR_BAD_KERNEL, "needs");
  expect_bad (p_trunc_bz, NULL, 64u << 20, VR_ERROR_BAD_KERNEL, "truncated");
  expect_bad (p_okbz, p_missing, 64u << 20, VR_ERROR_BAD_INITRD, "Cannot read");
  expect_bad (p_okbz, p_bigrd, 32u << 20, VR_ERROR_BAD_INITRD, "does not fit");
}

int
main (int argc, char **argv)
{
  int ret;

  g_test_init (&argc, &argv, NULL);
  tmpdir = g_dir_make_tmp ("vireo-test-boot-XXXXXX", NULL);
  g_test_add_func ("/boot/pvh", test_boot_pvh);
  g_test_add_func ("/boot/linux", test_boot_linux);
  g_test_add_func ("/boot/linux-cmdline-too-long", test_boot_linux_cmdline_too_long);
  g_test_add_func ("/boot/multiboot-kludge", test_boot_multiboot_kludge);
  g_test_add_func ("/boot/bad-images", test_boot_bad_images);
  ret = g_test_run ();
  {
    g_autofree char *cmd = g_strdup_printf ("rm -rf '%s'", tmpdir);
    (void) !system (cmd);
  }
  g_free (tmpdir);
  return ret;
}
