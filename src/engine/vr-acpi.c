/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * ACPI tables for a Vireo machine. One builder makes two files and the script that links
 * them, the way QEMU hands its tables to the firmware:
 *
 *   rsdp    RSDP (rev 2)
 *   tables  RSDT | XSDT | FACS (64-byte aligned) | DSDT | FADT (rev 6) | MADT
 *   script  every pointer (as an offset into `tables`) and every checksum to fix up
 *
 * vr_acpi_build_fw_cfg() returns the files with the script encoded as a BIOS linker/loader
 * script (SeaBIOS's romfile_loader: ALLOCATE, ADD_POINTER, ADD_CHECKSUM, 128 bytes each),
 * which the firmware runs after placing `rsdp` in the F segment and `tables` in high memory.
 * vr_acpi_build() runs the same script itself for `rsdp` at @base and `tables` at
 * @base + TABLES_OFFSET, and returns the result as one blob for directly booted kernels.
 *
 * The DSDT's AML is emitted here byte by byte (no iasl at build time). It holds only Name
 * and Device objects (no methods, so nothing loops):
 *   \_S5_            Package {VR_ACPI_S5_TYP, VR_ACPI_S5_TYP, 0, 0}
 *   \_SB.PCI0        PNP0A03, _UID/_BBN/_ADR 0, _CRS: bus 0-255, I/O 0-0xcf7 and
 *                    0xd00-0xffff, 0xa0000-0xbffff, VR_MMIO_HOLE_START-0xfebfffff
 *   \_SB.COM1 KBD MOU RTC   the ISA devices with their fixed resources
 *   \_SB.RES0        PNP0C02: the ACPI PM block, fw_cfg and debug-exit ports
 *   \_SB.Cxxx        ACPI0007 processor devices, _UID = the MADT's processor UID
 * The ISA devices sit under \_SB (as on QEMU's microvm), not under a PCI-to-ISA bridge: no
 * PCI function backs one, and a later PCI device must not inherit its companion.
 *
 * MADT: one enabled Local APIC per vCPU (APIC id = UID = index), the IOAPIC with id 0 at
 * VR_IOAPIC_ADDR and GSI base 0, overrides IRQ0→GSI2 (flags 0, i.e. ISA edge/high) and
 * IRQ9→GSI9 (level, active high), and a LINT1 NMI for all processors. The IOAPIC id is 0
 * like QEMU's: that is what KVM's in-kernel IOAPIC reports in its ID register, and IOAPIC
 * ids are a namespace apart from local APIC ids on any xAPIC/x2APIC system.
 */

#include "config.h"

#include "vr-acpi.h"
#include "vr-bytes.h"

#include <string.h>

#include "vr-machine-private.h"
#include "vr-memory.h"

#define OEM_ID        "VIREO "
#define OEM_TABLE_ID  "VIREOPC "
#define CREATOR_ID    "VRIO"
#define OEM_REVISION  1
#define CREATOR_REV   1

#define HDR_LEN       36

/* FADT flags. */
#define FADT_WBINVD         (1u << 0)
#define FADT_PROC_C1        (1u << 2)
#define FADT_PWR_BUTTON     (1u << 4)
#define FADT_SLP_BUTTON     (1u << 5)
#define FADT_RESET_REG_SUP  (1u << 10)

#define BOOT_ARCH_LEGACY    0x0001
#define BOOT_ARCH_8042      0x0002

#define GAS_SYSTEM_IO       1

/* In the blob of vr_acpi_build(): `tables` starts here, 64-byte aligned like the FACS. */
#define TABLES_OFFSET       64

/* BIOS linker/loader commands (SeaBIOS src/fw/romfile_loader.h): 128 bytes each, LE. */
#define LOADER_CMD_SIZE     128
#define LOADER_FILESZ       56
#define LOADER_ALLOCATE     1
#define LOADER_ADD_POINTER  2
#define LOADER_ADD_CHECKSUM 3
#define LOADER_ZONE_HIGH    1
#define LOADER_ZONE_FSEG    2
#define RSDP_ALIGN          16
#define TABLES_ALIGN        64

typedef enum
{
  FILE_RSDP,
  FILE_TABLES,
} FileId;

/* A pointer field in @file at @offset, @size bytes, that holds an offset into `tables`. */
typedef struct
{
  FileId   file;
  uint32_t offset;
  uint8_t  size;
} Pointer;

/* The byte at @offset in @file makes [@start, @start + @length) sum to zero. */
typedef struct
{
  FileId   file;
  uint32_t offset;
  uint32_t start;
  uint32_t length;
} Checksum;

/* The builder's output: both files, then the fix-ups in the order they must run. */
typedef struct
{
  GByteArray *rsdp;
  GByteArray *tables;
  GArray     *pointers;
  GArray     *checksums;
} Build;

uint8_t
vr_acpi_checksum (const void *data,
                  size_t      len)
{
  const uint8_t *p = data;
  uint8_t sum = 0;

  for (size_t i = 0; i < len; i++)
    sum += p[i];
  return (uint8_t) -sum;
}

/* ---- Little helpers on a GByteArray --------------------------------------------------- */

static void
put_bytes (GByteArray *b, const void *data, size_t len)
{
  g_byte_array_append (b, data, (guint) len);
}

static void
set32 (GByteArray *b, size_t off, uint32_t v)
{
  for (unsigned i = 0; i < 4; i++)
    b->data[off + i] = (uint8_t) (v >> (8 * i));
}

static void
set64 (GByteArray *b, size_t off, uint64_t v)
{
  set32 (b, off, (uint32_t) v);
  set32 (b, off + 4, (uint32_t) (v >> 32));
}

static void
align (GByteArray *b, size_t to)
{
  while (b->len % to)
    vr_bytes_put8 (b, 0);
}

/* Generic Address Structure. */
static void
put_gas (GByteArray *b, uint8_t space, uint8_t bit_width, uint8_t access_size, uint64_t addr)
{
  vr_bytes_put8 (b, space);
  vr_bytes_put8 (b, bit_width);
  vr_bytes_put8 (b, 0);
  vr_bytes_put8 (b, access_size);
  vr_bytes_put64 (b, addr);
}

/* Starts a table: returns its offset in the blob. */
static size_t
table_begin (GByteArray *b, const char *sig, uint8_t revision)
{
  size_t start;

  align (b, 16);
  start = b->len;
  put_bytes (b, sig, 4);
  vr_bytes_put32 (b, 0);   /* length, patched */
  vr_bytes_put8 (b, revision);
  vr_bytes_put8 (b, 0);    /* checksum, patched */
  put_bytes (b, OEM_ID, 6);
  put_bytes (b, OEM_TABLE_ID, 8);
  vr_bytes_put32 (b, OEM_REVISION);
  put_bytes (b, CREATOR_ID, 4);
  vr_bytes_put32 (b, CREATOR_REV);
  return start;
}

/* Records that the byte at @offset in @file checksums [@start, @start + @length). */
static void
add_checksum (Build *bld, FileId file, size_t offset, size_t start, size_t length)
{
  Checksum c = { file, (uint32_t) offset, (uint32_t) start, (uint32_t) length };

  g_array_append_val (bld->checksums, c);
}

/* Records that the @size bytes at @offset in @file hold an offset into `tables`. */
static void
add_pointer (Build *bld, FileId file, size_t offset, uint8_t size)
{
  Pointer p = { file, (uint32_t) offset, size };

  g_array_append_val (bld->pointers, p);
}

/* Appends a pointer to @target (an offset into `tables`) to `tables`. */
static void
put_ptr32 (Build *bld, size_t target)
{
  add_pointer (bld, FILE_TABLES, bld->tables->len, 4);
  vr_bytes_put32 (bld->tables, (uint32_t) target);
}

static void
put_ptr64 (Build *bld, size_t target)
{
  add_pointer (bld, FILE_TABLES, bld->tables->len, 8);
  vr_bytes_put64 (bld->tables, target);
}

/*
 * Patches the length of the table at @start in `tables`, @len bytes long, and its checksum
 * (final for a table without pointers; the script recomputes it after relocation).
 */
static void
table_finish (Build *bld, size_t start, size_t len)
{
  GByteArray *b = bld->tables;

  set32 (b, start + 4, (uint32_t) len);
  b->data[start + 9] = 0;
  b->data[start + 9] = vr_acpi_checksum (b->data + start, len);
  add_checksum (bld, FILE_TABLES, start + 9, start, len);
}

/* Finishes the table at @start, which ends at the end of `tables`. */
static void
table_end (Build *bld, size_t start)
{
  table_finish (bld, start, bld->tables->len - start);
}

/* ---- AML ---------------------------------------------------------------------------- */

#define AML_ZERO          0x00
#define AML_ONE           0x01
#define AML_NAME          0x08
#define AML_BYTE          0x0a
#define AML_WORD          0x0b
#define AML_DWORD         0x0c
#define AML_STRING        0x0d
#define AML_QWORD         0x0e
#define AML_SCOPE         0x10
#define AML_BUFFER        0x11
#define AML_PACKAGE       0x12
#define AML_EXT           0x5b
#define AML_DEVICE        0x82
#define AML_ROOT          0x5c

/* Wraps @body in "op PkgLength body". */
static void
aml_pkg (GByteArray *out, const uint8_t *op, size_t op_len, GByteArray *body)
{
  size_t len = body->len;
  size_t total;

  put_bytes (out, op, op_len);
  /* PkgLength counts itself: 1 byte up to 63, else 2-4 bytes of 4 + 8·n bits. */
  if (len + 1 <= 0x3f)
    vr_bytes_put8 (out, (uint8_t) (len + 1));
  else if (len + 2 <= 0xfff)
    {
      total = len + 2;
      vr_bytes_put8 (out, (uint8_t) (0x40 | (total & 0x0f)));
      vr_bytes_put8 (out, (uint8_t) (total >> 4));
    }
  else if (len + 3 <= 0xfffff)
    {
      total = len + 3;
      vr_bytes_put8 (out, (uint8_t) (0x80 | (total & 0x0f)));
      vr_bytes_put8 (out, (uint8_t) (total >> 4));
      vr_bytes_put8 (out, (uint8_t) (total >> 12));
    }
  else
    {
      total = len + 4;
      g_assert (total <= 0xfffffff);
      vr_bytes_put8 (out, (uint8_t) (0xc0 | (total & 0x0f)));
      vr_bytes_put8 (out, (uint8_t) (total >> 4));
      vr_bytes_put8 (out, (uint8_t) (total >> 12));
      vr_bytes_put8 (out, (uint8_t) (total >> 20));
    }
  put_bytes (out, body->data, body->len);
}

/* A 4-character NameSeg ("_S5_", "PCI0"), or a root path ("\\_SB_"). */
static void
aml_name (GByteArray *b, const char *name)
{
  if (name[0] == '\\')
    {
      vr_bytes_put8 (b, AML_ROOT);
      name++;
    }
  g_assert (strlen (name) == 4);
  put_bytes (b, name, 4);
}

static void
aml_int (GByteArray *b, uint64_t v)
{
  if (v == 0)
    vr_bytes_put8 (b, AML_ZERO);
  else if (v == 1)
    vr_bytes_put8 (b, AML_ONE);
  else if (v <= 0xff)
    {
      vr_bytes_put8 (b, AML_BYTE);
      vr_bytes_put8 (b, (uint8_t) v);
    }
  else if (v <= 0xffff)
    {
      vr_bytes_put8 (b, AML_WORD);
      vr_bytes_put16 (b, (uint16_t) v);
    }
  else if (v <= 0xffffffff)
    {
      vr_bytes_put8 (b, AML_DWORD);
      vr_bytes_put32 (b, (uint32_t) v);
    }
  else
    {
      vr_bytes_put8 (b, AML_QWORD);
      vr_bytes_put64 (b, v);
    }
}

/* EISAID("PNP0A03") as the DWord the ASL compiler makes of it. */
static uint32_t
eisa_id (const char *id)
{
  uint32_t v;

  g_assert (strlen (id) == 7);
  v = ((uint32_t) (id[0] & 0x1f) << 26) | ((uint32_t) (id[1] & 0x1f) << 21)
      | ((uint32_t) (id[2] & 0x1f) << 16) | (uint32_t) g_ascii_strtoull (id + 3, NULL, 16);
  return GUINT32_SWAP_LE_BE (v);
}

static void
aml_name_int (GByteArray *b, const char *name, uint64_t v)
{
  vr_bytes_put8 (b, AML_NAME);
  aml_name (b, name);
  aml_int (b, v);
}

static void
aml_name_eisa (GByteArray *b, const char *name, const char *id)
{
  vr_bytes_put8 (b, AML_NAME);
  aml_name (b, name);
  vr_bytes_put8 (b, AML_DWORD);
  vr_bytes_put32 (b, eisa_id (id));
}

static void
aml_name_string (GByteArray *b, const char *name, const char *s)
{
  vr_bytes_put8 (b, AML_NAME);
  aml_name (b, name);
  vr_bytes_put8 (b, AML_STRING);
  put_bytes (b, s, strlen (s) + 1);
}

/* Name (_CRS, ResourceTemplate () { @res + EndTag }). */
static void
aml_name_crs (GByteArray *b, GByteArray *res)
{
  g_autoptr (GByteArray) buf = g_byte_array_new ();
  const uint8_t op = AML_BUFFER;

  /* End tag, checksum 0 ("the checksum is treated as correct"). */
  vr_bytes_put8 (res, 0x79);
  vr_bytes_put8 (res, 0x00);

  aml_int (buf, res->len);
  put_bytes (buf, res->data, res->len);
  vr_bytes_put8 (b, AML_NAME);
  aml_name (b, "_CRS");
  aml_pkg (b, &op, 1, buf);
}

/* Resource descriptors. */
static void
res_io (GByteArray *r, uint16_t base, uint8_t len)
{
  vr_bytes_put8 (r, 0x47);  /* I/O port, 7 bytes */
  vr_bytes_put8 (r, 0x01);  /* 16-bit decode */
  vr_bytes_put16 (r, base);
  vr_bytes_put16 (r, base);
  vr_bytes_put8 (r, 0x01);
  vr_bytes_put8 (r, len);
}

static void
res_irq (GByteArray *r, unsigned irq)
{
  vr_bytes_put8 (r, 0x22);  /* IRQ, 2 bytes: edge, active high (IRQNoFlags) */
  vr_bytes_put16 (r, (uint16_t) (1u << irq));
}

static void
res_word_space (GByteArray *r, uint8_t type, uint8_t type_flags, uint16_t min, uint16_t max)
{
  vr_bytes_put8 (r, 0x88);  /* Word Address Space */
  vr_bytes_put16 (r, 13);
  vr_bytes_put8 (r, type);  /* 1: I/O, 2: bus number */
  vr_bytes_put8 (r, 0x0c);  /* producer, MinFixed, MaxFixed, positive decode */
  vr_bytes_put8 (r, type_flags);
  vr_bytes_put16 (r, 0);   /* granularity */
  vr_bytes_put16 (r, min);
  vr_bytes_put16 (r, max);
  vr_bytes_put16 (r, 0);   /* translation */
  vr_bytes_put16 (r, (uint16_t) (max - min + 1));
}

static void
res_dword_memory (GByteArray *r, uint8_t type_flags, uint32_t min, uint32_t max)
{
  vr_bytes_put8 (r, 0x87);  /* DWord Address Space */
  vr_bytes_put16 (r, 23);
  vr_bytes_put8 (r, 0);    /* memory */
  vr_bytes_put8 (r, 0x0c);  /* producer, MinFixed, MaxFixed, positive decode */
  vr_bytes_put8 (r, type_flags);
  vr_bytes_put32 (r, 0);
  vr_bytes_put32 (r, min);
  vr_bytes_put32 (r, max);
  vr_bytes_put32 (r, 0);
  vr_bytes_put32 (r, max - min + 1);
}

static void
aml_device (GByteArray *out, const char *name, GByteArray *body)
{
  g_autoptr (GByteArray) inner = g_byte_array_new ();
  const uint8_t op[2] = { AML_EXT, AML_DEVICE };

  aml_name (inner, name);
  put_bytes (inner, body->data, body->len);
  aml_pkg (out, op, 2, inner);
}

static void
isa_device (GByteArray *sb, const char *name, const char *hid, unsigned uid, GByteArray *res)
{
  g_autoptr (GByteArray) dev = g_byte_array_new ();

  aml_name_eisa (dev, "_HID", hid);
  aml_name_int (dev, "_UID", uid);
  aml_name_crs (dev, res);
  aml_device (sb, name, dev);
}

static void
build_dsdt_body (GByteArray *aml, unsigned ncpus)
{
  g_autoptr (GByteArray) sb = g_byte_array_new ();
  g_autoptr (GByteArray) scope = g_byte_array_new ();
  g_autoptr (GByteArray) pci = g_byte_array_new ();
  g_autoptr (GByteArray) res = g_byte_array_new ();
  g_autoptr (GByteArray) pkg = g_byte_array_new ();
  const uint8_t scope_op = AML_SCOPE;
  const uint8_t pkg_op = AML_PACKAGE;

  /* \_S5_: Package (4) { typ, typ, 0, 0 } */
  vr_bytes_put8 (pkg, 4);
  aml_int (pkg, VR_ACPI_S5_TYP);
  aml_int (pkg, VR_ACPI_S5_TYP);
  aml_int (pkg, 0);
  aml_int (pkg, 0);
  vr_bytes_put8 (aml, AML_NAME);
  aml_name (aml, "\\_S5_");
  aml_pkg (aml, &pkg_op, 1, pkg);

  /* \_SB.PCI0 */
  aml_name_eisa (pci, "_HID", "PNP0A03");
  aml_name_int (pci, "_ADR", 0);
  aml_name_int (pci, "_UID", 0);
  aml_name_int (pci, "_BBN", 0);
  res_word_space (res, 2, 0, 0x0000, 0x00ff);
  res_io (res, VR_PCI_CONFIG_BASE, 8);
  res_word_space (res, 1, 0x03, 0x0000, 0x0cf7);
  res_word_space (res, 1, 0x03, 0x0d00, 0xffff);
  res_dword_memory (res, 0x03, 0x000a0000, 0x000bffff);       /* cacheable, read-write */
  res_dword_memory (res, 0x01, (uint32_t) VR_MMIO_HOLE_START, 0xfebfffff); /* non-cacheable */
  aml_name_crs (pci, res);
  /* _PRT: INTA-INTD of every slot on the IOAPIC's PCI lines, swizzled as on a PC. */
  {
    g_autoptr (GByteArray) prt = g_byte_array_new ();

    vr_bytes_put8 (prt, 31 * 4);
    for (unsigned slot = 1; slot < 32; slot++)
      for (unsigned pin = 0; pin < 4; pin++)
        {
          g_autoptr (GByteArray) entry = g_byte_array_new ();

          vr_bytes_put8 (entry, 4);
          aml_int (entry, (uint64_t) slot << 16 | 0xffff);
          aml_int (entry, pin);
          aml_int (entry, 0);
          aml_int (entry, VR_PCI_INTX_GSI (slot, pin));
          aml_pkg (prt, &pkg_op, 1, entry);
        }
    vr_bytes_put8 (pci, AML_NAME);
    aml_name (pci, "_PRT");
    aml_pkg (pci, &pkg_op, 1, prt);
  }
  aml_device (sb, "PCI0", pci);

  /* ISA devices. */
  g_byte_array_set_size (res, 0);
  res_io (res, VR_COM1_BASE, 8);
  res_irq (res, VR_COM1_IRQ);
  isa_device (sb, "COM1", "PNP0501", 1, res);

  g_byte_array_set_size (res, 0);
  res_io (res, VR_I8042_DATA, 1);
  res_io (res, VR_I8042_CMD, 1);
  res_irq (res, VR_I8042_KBD_IRQ);
  isa_device (sb, "KBD_", "PNP0303", 0, res);

  g_byte_array_set_size (res, 0);
  res_irq (res, VR_I8042_AUX_IRQ);
  isa_device (sb, "MOU_", "PNP0F13", 0, res);

  g_byte_array_set_size (res, 0);
  res_io (res, VR_RTC_BASE, 2);
  res_irq (res, VR_RTC_IRQ);
  isa_device (sb, "RTC_", "PNP0B00", 0, res);

  g_byte_array_set_size (res, 0);
  res_io (res, VR_ACPI_PM_BASE, VR_ACPI_PM_SIZE);
  res_io (res, VR_FW_CFG_BASE, 12);
  res_io (res, VR_DEBUG_EXIT_BASE, VR_DEBUG_EXIT_SIZE);
  isa_device (sb, "RES0", "PNP0C02", 0, res);

  /* Processors. */
  for (unsigned i = 0; i < ncpus; i++)
    {
      g_autoptr (GByteArray) cpu = g_byte_array_new ();
      char name[5];

      g_snprintf (name, sizeof name, "C%03X", i);
      aml_name_string (cpu, "_HID", "ACPI0007");
      aml_name_int (cpu, "_UID", i);
      aml_device (sb, name, cpu);
    }

  aml_name (scope, "\\_SB_");
  put_bytes (scope, sb->data, sb->len);
  aml_pkg (aml, &scope_op, 1, scope);
}

/* ---- Tables ------------------------------------------------------------------------- */

static size_t
build_facs (GByteArray *b)
{
  size_t start;

  align (b, 64);
  start = b->len;
  put_bytes (b, "FACS", 4);
  vr_bytes_put32 (b, 64);
  vr_bytes_put32 (b, 0);   /* hardware signature */
  vr_bytes_put32 (b, 0);   /* firmware waking vector */
  vr_bytes_put32 (b, 0);   /* global lock */
  vr_bytes_put32 (b, 0);   /* flags */
  vr_bytes_put64 (b, 0);   /* X firmware waking vector */
  vr_bytes_put8 (b, 2);    /* version */
  vr_bytes_put8 (b, 0);
  vr_bytes_put8 (b, 0);
  vr_bytes_put8 (b, 0);
  vr_bytes_put32 (b, 0);   /* OSPM flags */
  while (b->len < start + 64)
    vr_bytes_put8 (b, 0);
  return start;
}

static size_t
build_dsdt (Build *bld, unsigned ncpus)
{
  g_autoptr (GByteArray) aml = g_byte_array_new ();
  size_t start = table_begin (bld->tables, "DSDT", 2);

  build_dsdt_body (aml, ncpus);
  put_bytes (bld->tables, aml->data, aml->len);
  table_end (bld, start);
  return start;
}

/* @facs and @dsdt are offsets into `tables`. */
static size_t
build_fadt (Build *bld, size_t facs, size_t dsdt)
{
  GByteArray *b = bld->tables;
  size_t start = table_begin (b, "FACP", 6);

  vr_bytes_put32 (b, 0);                     /* FIRMWARE_CTRL: X_FIRMWARE_CTRL is used */
  put_ptr32 (bld, dsdt);                     /* DSDT */
  vr_bytes_put8 (b, 0);                      /* reserved */
  vr_bytes_put8 (b, 1);                      /* preferred PM profile: desktop */
  vr_bytes_put16 (b, VR_ACPI_SCI_IRQ);       /* SCI_INT */
  vr_bytes_put32 (b, 0);                     /* SMI_CMD: ACPI mode is always on */
  vr_bytes_put8 (b, 0);                      /* ACPI_ENABLE */
  vr_bytes_put8 (b, 0);                      /* ACPI_DISABLE */
  vr_bytes_put8 (b, 0);                      /* S4BIOS_REQ */
  vr_bytes_put8 (b, 0);                      /* PSTATE_CNT */
  vr_bytes_put32 (b, VR_ACPI_PM1_EVT);       /* PM1a_EVT_BLK */
  vr_bytes_put32 (b, 0);                     /* PM1b_EVT_BLK */
  vr_bytes_put32 (b, VR_ACPI_PM1_CNT);       /* PM1a_CNT_BLK */
  vr_bytes_put32 (b, 0);                     /* PM1b_CNT_BLK */
  vr_bytes_put32 (b, 0);                     /* PM2_CNT_BLK */
  vr_bytes_put32 (b, VR_ACPI_PM_TMR);        /* PM_TMR_BLK */
  vr_bytes_put32 (b, VR_ACPI_GPE0);          /* GPE0_BLK */
  vr_bytes_put32 (b, 0);                     /* GPE1_BLK */
  vr_bytes_put8 (b, 4);                      /* PM1_EVT_LEN */
  vr_bytes_put8 (b, 2);                      /* PM1_CNT_LEN */
  vr_bytes_put8 (b, 0);                      /* PM2_CNT_LEN */
  vr_bytes_put8 (b, 4);                      /* PM_TMR_LEN */
  vr_bytes_put8 (b, 4);                      /* GPE0_BLK_LEN */
  vr_bytes_put8 (b, 0);                      /* GPE1_BLK_LEN */
  vr_bytes_put8 (b, 0);                      /* GPE1_BASE */
  vr_bytes_put8 (b, 0);                      /* CST_CNT */
  vr_bytes_put16 (b, 0x0fff);                /* P_LVL2_LAT: C2 not supported */
  vr_bytes_put16 (b, 0x0fff);                /* P_LVL3_LAT: C3 not supported */
  vr_bytes_put16 (b, 0);                     /* FLUSH_SIZE */
  vr_bytes_put16 (b, 0);                     /* FLUSH_STRIDE */
  vr_bytes_put8 (b, 0);                      /* DUTY_OFFSET */
  vr_bytes_put8 (b, 0);                      /* DUTY_WIDTH */
  vr_bytes_put8 (b, 0);                      /* DAY_ALRM */
  vr_bytes_put8 (b, 0);                      /* MON_ALRM */
  vr_bytes_put8 (b, 0x32);                   /* CENTURY */
  vr_bytes_put16 (b, BOOT_ARCH_LEGACY | BOOT_ARCH_8042);  /* IAPC_BOOT_ARCH */
  vr_bytes_put8 (b, 0);                      /* reserved */
  vr_bytes_put32 (b, FADT_WBINVD | FADT_PROC_C1 | FADT_SLP_BUTTON | FADT_RESET_REG_SUP);
  put_gas (b, GAS_SYSTEM_IO, 8, 1, VR_RESET_PORT); /* RESET_REG */
  vr_bytes_put8 (b, VR_RESET_VALUE);         /* RESET_VALUE */
  vr_bytes_put16 (b, 0);                     /* ARM_BOOT_ARCH */
  vr_bytes_put8 (b, 0);                      /* FADT minor version */
  put_ptr64 (bld, facs);                     /* X_FIRMWARE_CTRL */
  put_ptr64 (bld, dsdt);                     /* X_DSDT */
  put_gas (b, GAS_SYSTEM_IO, 32, 0, VR_ACPI_PM1_EVT);  /* X_PM1a_EVT_BLK */
  put_gas (b, 0, 0, 0, 0);                   /* X_PM1b_EVT_BLK */
  put_gas (b, GAS_SYSTEM_IO, 16, 0, VR_ACPI_PM1_CNT);  /* X_PM1a_CNT_BLK */
  put_gas (b, 0, 0, 0, 0);                   /* X_PM1b_CNT_BLK */
  put_gas (b, 0, 0, 0, 0);                   /* X_PM2_CNT_BLK */
  put_gas (b, GAS_SYSTEM_IO, 32, 0, VR_ACPI_PM_TMR);   /* X_PM_TMR_BLK */
  put_gas (b, GAS_SYSTEM_IO, 32, 0, VR_ACPI_GPE0);     /* X_GPE0_BLK */
  put_gas (b, 0, 0, 0, 0);                   /* X_GPE1_BLK */
  put_gas (b, 0, 0, 0, 0);                   /* SLEEP_CONTROL_REG */
  put_gas (b, 0, 0, 0, 0);                   /* SLEEP_STATUS_REG */
  put_bytes (b, "VIREOKVM", 8);              /* hypervisor vendor identity */
  table_end (bld, start);
  return start;
}

static size_t
build_madt (Build *bld, unsigned ncpus)
{
  GByteArray *b = bld->tables;
  size_t start = table_begin (b, "APIC", 5);

  vr_bytes_put32 (b, VR_LAPIC_ADDR);
  vr_bytes_put32 (b, 1);                     /* PCAT_COMPAT: there are 8259s too */

  for (unsigned i = 0; i < ncpus; i++)
    {
      vr_bytes_put8 (b, 0);                  /* Processor Local APIC */
      vr_bytes_put8 (b, 8);
      vr_bytes_put8 (b, (uint8_t) i);        /* ACPI processor UID */
      vr_bytes_put8 (b, (uint8_t) i);        /* APIC id */
      vr_bytes_put32 (b, 1);                 /* enabled */
    }

  vr_bytes_put8 (b, 1);                      /* I/O APIC */
  vr_bytes_put8 (b, 12);
  vr_bytes_put8 (b, 0);                      /* id */
  vr_bytes_put8 (b, 0);
  vr_bytes_put32 (b, VR_IOAPIC_ADDR);
  vr_bytes_put32 (b, 0);                     /* GSI base */

  vr_bytes_put8 (b, 2);                      /* Interrupt Source Override: IRQ0 → GSI2 */
  vr_bytes_put8 (b, 10);
  vr_bytes_put8 (b, 0);                      /* ISA */
  vr_bytes_put8 (b, 0);
  vr_bytes_put32 (b, 2);
  vr_bytes_put16 (b, 0);                     /* conforms to the bus: edge, active high */

  vr_bytes_put8 (b, 2);                      /* IRQ9 → GSI9, level, active high (the SCI) */
  vr_bytes_put8 (b, 10);
  vr_bytes_put8 (b, 0);
  vr_bytes_put8 (b, VR_ACPI_SCI_IRQ);
  vr_bytes_put32 (b, VR_ACPI_SCI_IRQ);
  vr_bytes_put16 (b, 0x000d);

  vr_bytes_put8 (b, 4);                      /* Local APIC NMI: all processors, LINT1 */
  vr_bytes_put8 (b, 6);
  vr_bytes_put8 (b, 0xff);
  vr_bytes_put16 (b, 0);
  vr_bytes_put8 (b, 1);

  table_end (bld, start);
  return start;
}

/* ---- The two files and their script ------------------------------------------------------ */

static void
build_init (Build *bld)
{
  bld->rsdp = g_byte_array_new ();
  bld->tables = g_byte_array_new ();
  bld->pointers = g_array_new (FALSE, FALSE, sizeof (Pointer));
  bld->checksums = g_array_new (FALSE, FALSE, sizeof (Checksum));
}

static void
build_clear (Build *bld)
{
  g_clear_pointer (&bld->rsdp, g_byte_array_unref);
  g_clear_pointer (&bld->tables, g_byte_array_unref);
  g_clear_pointer (&bld->pointers, g_array_unref);
  g_clear_pointer (&bld->checksums, g_array_unref);
}

/*
 * Fills @bld: `tables` with every pointer an offset into it, `rsdp`, and the fix-ups, the
 * checksums in an order that works (each after every pointer; the RSDP's 20-byte checksum
 * before its extended one, which covers it).
 */
static void
build_all (Build *bld, unsigned ncpus)
{
  GByteArray *r = bld->rsdp;
  GByteArray *b = bld->tables;
  size_t rsdt, xsdt, fadt, facs, dsdt, madt;
  size_t entries[2];

  /* RSDT and XSDT with two entries each, filled in below. */
  rsdt = table_begin (b, "RSDT", 1);
  vr_bytes_put32 (b, 0);
  vr_bytes_put32 (b, 0);
  xsdt = table_begin (b, "XSDT", 1);
  vr_bytes_put64 (b, 0);
  vr_bytes_put64 (b, 0);

  facs = build_facs (b);
  dsdt = build_dsdt (bld, ncpus);
  fadt = build_fadt (bld, facs, dsdt);
  madt = build_madt (bld, ncpus);

  entries[0] = fadt;
  entries[1] = madt;
  for (unsigned i = 0; i < G_N_ELEMENTS (entries); i++)
    {
      set32 (b, rsdt + HDR_LEN + 4 * i, (uint32_t) entries[i]);
      add_pointer (bld, FILE_TABLES, rsdt + HDR_LEN + 4 * i, 4);
      set64 (b, xsdt + HDR_LEN + 8 * i, entries[i]);
      add_pointer (bld, FILE_TABLES, xsdt + HDR_LEN + 8 * i, 8);
    }
  table_finish (bld, rsdt, HDR_LEN + 4 * G_N_ELEMENTS (entries));
  table_finish (bld, xsdt, HDR_LEN + 8 * G_N_ELEMENTS (entries));

  put_bytes (r, "RSD PTR ", 8);
  vr_bytes_put8 (r, 0);                      /* checksum of the first 20 bytes */
  put_bytes (r, OEM_ID, 6);
  vr_bytes_put8 (r, 2);                      /* revision */
  add_pointer (bld, FILE_RSDP, r->len, 4);
  vr_bytes_put32 (r, (uint32_t) rsdt);       /* RSDT address */
  vr_bytes_put32 (r, 36);                    /* length */
  add_pointer (bld, FILE_RSDP, r->len, 8);
  vr_bytes_put64 (r, xsdt);                  /* XSDT address */
  vr_bytes_put8 (r, 0);                      /* extended checksum */
  vr_bytes_put8 (r, 0);
  vr_bytes_put8 (r, 0);
  vr_bytes_put8 (r, 0);
  add_checksum (bld, FILE_RSDP, 8, 0, 20);
  add_checksum (bld, FILE_RSDP, 32, 0, 36);
}

/* Adds @addr to the @size-byte little-endian value at @p, modulo 2^(8·@size). */
static void
relocate (uint8_t *p, uint8_t size, uint64_t addr)
{
  uint64_t v = 0;

  for (unsigned i = 0; i < size; i++)
    v |= (uint64_t) p[i] << (8 * i);
  v += addr;
  for (unsigned i = 0; i < size; i++)
    p[i] = (uint8_t) (v >> (8 * i));
}

GBytes *
vr_acpi_build (const VrAcpiConfig *config,
               uint64_t            base)
{
  g_autoptr (GByteArray) blob = NULL;
  Build bld;
  size_t file_start[2];

  g_return_val_if_fail (config != NULL, NULL);
  g_return_val_if_fail (config->ncpus >= 1 && config->ncpus <= VR_MAX_CPUS, NULL);
  g_return_val_if_fail (base + VR_ACPI_TABLES_SIZE <= G_MAXUINT32, NULL);

  build_init (&bld);
  build_all (&bld, config->ncpus);

  /* What the firmware does with the script, for rsdp at @base and the tables after it. */
  g_assert (bld.rsdp->len <= TABLES_OFFSET);
  blob = g_byte_array_sized_new (TABLES_OFFSET + bld.tables->len);
  put_bytes (blob, bld.rsdp->data, bld.rsdp->len);
  while (blob->len < TABLES_OFFSET)
    vr_bytes_put8 (blob, 0);
  put_bytes (blob, bld.tables->data, bld.tables->len);
  file_start[FILE_RSDP] = 0;
  file_start[FILE_TABLES] = TABLES_OFFSET;

  for (guint i = 0; i < bld.pointers->len; i++)
    {
      const Pointer *p = &g_array_index (bld.pointers, Pointer, i);

      relocate (blob->data + file_start[p->file] + p->offset, p->size, base + TABLES_OFFSET);
    }
  for (guint i = 0; i < bld.checksums->len; i++)
    {
      const Checksum *c = &g_array_index (bld.checksums, Checksum, i);
      uint8_t *data = blob->data + file_start[c->file];

      data[c->offset] += vr_acpi_checksum (data + c->start, c->length);
    }
  build_clear (&bld);

  g_assert (blob->len <= VR_ACPI_TABLES_SIZE);
  return g_byte_array_free_to_bytes (g_steal_pointer (&blob));
}

/* Appends a zeroed command to @script; returns it. */
static uint8_t *
loader_command (GByteArray *script, uint32_t command)
{
  size_t at = script->len;

  g_byte_array_set_size (script, (guint) (at + LOADER_CMD_SIZE));
  memset (script->data + at, 0, LOADER_CMD_SIZE);
  set32 (script, at, command);
  return script->data + at;
}

static void
loader_set_name (uint8_t *field, const char *name)
{
  g_assert (strlen (name) < LOADER_FILESZ);
  memcpy (field, name, strlen (name));
}

static void
loader_set32 (uint8_t *field, uint32_t v)
{
  for (unsigned i = 0; i < 4; i++)
    field[i] = (uint8_t) (v >> (8 * i));
}

bool
vr_acpi_build_fw_cfg (const VrAcpiConfig  *config,
                      GBytes             **rsdp,
                      GBytes             **tables,
                      GBytes             **loader)
{
  static const char *const names[] = {
    [FILE_RSDP] = VR_ACPI_FW_CFG_RSDP,
    [FILE_TABLES] = VR_ACPI_FW_CFG_TABLES,
  };
  g_autoptr (GByteArray) script = g_byte_array_new ();
  Build bld;
  uint8_t *cmd;

  g_return_val_if_fail (config != NULL, false);
  g_return_val_if_fail (config->ncpus >= 1 && config->ncpus <= VR_MAX_CPUS, false);
  g_return_val_if_fail (rsdp != NULL && tables != NULL && loader != NULL, false);

  build_init (&bld);
  build_all (&bld, config->ncpus);

  /* Command layout: u32 command, then (offsets from the command's start) the fields. */
  cmd = loader_command (script, LOADER_ALLOCATE);
  loader_set_name (cmd + 4, names[FILE_RSDP]);
  loader_set32 (cmd + 60, RSDP_ALIGN);
  cmd[64] = LOADER_ZONE_FSEG;
  cmd = loader_command (script, LOADER_ALLOCATE);
  loader_set_name (cmd + 4, names[FILE_TABLES]);
  loader_set32 (cmd + 60, TABLES_ALIGN);
  cmd[64] = LOADER_ZONE_HIGH;

  for (guint i = 0; i < bld.pointers->len; i++)
    {
      const Pointer *p = &g_array_index (bld.pointers, Pointer, i);

      cmd = loader_command (script, LOADER_ADD_POINTER);
      loader_set_name (cmd + 4, names[p->file]);
      loader_set_name (cmd + 60, names[FILE_TABLES]);
      loader_set32 (cmd + 116, p->offset);
      cmd[120] = p->size;
    }
  for (guint i = 0; i < bld.checksums->len; i++)
    {
      const Checksum *c = &g_array_index (bld.checksums, Checksum, i);

      cmd = loader_command (script, LOADER_ADD_CHECKSUM);
      loader_set_name (cmd + 4, names[c->file]);
      loader_set32 (cmd + 60, c->offset);
      loader_set32 (cmd + 64, c->start);
      loader_set32 (cmd + 68, c->length);
    }

  *rsdp = g_byte_array_free_to_bytes (g_steal_pointer (&bld.rsdp));
  *tables = g_byte_array_free_to_bytes (g_steal_pointer (&bld.tables));
  *loader = g_byte_array_free_to_bytes (g_steal_pointer (&script));
  build_clear (&bld);
  return true;
}
