/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * The ACPI builder: walks RSDP → XSDT/RSDT → every table for 1, 4 and 64 vCPUs, checking
 * lengths, checksums and the fields the guest relies on; parses the DSDT's AML with a small
 * walker for the subset we emit (and with iasl -d when it is installed: Debian's
 * acpica-tools). The fw_cfg form: checks the linker/loader script the way SeaBIOS reads it,
 * runs it at two pairs of addresses and compares the result with vr_acpi_build()'s tables.
 */

#include "config.h"

#include <glib/gstdio.h>
#include <string.h>

#include "vr-acpi.h"
#include "vr-machine-private.h"
#include "vr-memory.h"

#define BASE VR_ACPI_TABLES_ADDR

typedef struct
{
  GBytes        *bytes;
  const uint8_t *data;
  size_t         size;
  unsigned       ncpus;
} Tables;

static uint16_t
get16 (const uint8_t *p)
{
  return (uint16_t) (p[0] | (p[1] << 8));
}

static uint32_t
get32 (const uint8_t *p)
{
  return (uint32_t) p[0] | ((uint32_t) p[1] << 8) | ((uint32_t) p[2] << 16)
         | ((uint32_t) p[3] << 24);
}

static uint64_t
get64 (const uint8_t *p)
{
  return get32 (p) | ((uint64_t) get32 (p + 4) << 32);
}

static uint8_t
sum (const uint8_t *p, size_t len)
{
  uint8_t s = 0;

  for (size_t i = 0; i < len; i++)
    s += p[i];
  return s;
}

static void
tables_build (Tables *t, unsigned ncpus)
{
  VrAcpiConfig config = { .ncpus = ncpus };

  t->bytes = vr_acpi_build (&config, BASE);
  g_assert_nonnull (t->bytes);
  t->data = g_bytes_get_data (t->bytes, &t->size);
  t->ncpus = ncpus;
  g_assert_cmpuint (t->size, <=, VR_ACPI_TABLES_SIZE);
}

/* A table at guest address @addr: checks bounds, length and checksum; returns it. */
static const uint8_t *
table_at (Tables *t, uint64_t addr, const char *sig)
{
  const uint8_t *p;
  uint32_t len;

  g_assert_cmpuint (addr, >=, BASE);
  g_assert_cmpuint (addr - BASE + 36, <=, t->size);
  p = t->data + (addr - BASE);
  len = get32 (p + 4);
  g_assert_cmpuint (len, >=, 36);
  g_assert_cmpuint (addr - BASE + len, <=, t->size);
  g_assert_cmpint (sum (p, len), ==, 0);
  g_assert_cmpmem (p + 10, 6, "VIREO ", 6);
  if (sig)
    g_assert_cmpmem (p, 4, sig, 4);
  return p;
}

/* Finds a table by signature through the XSDT. */
static const uint8_t *
find_table (Tables *t, const char *sig)
{
  const uint8_t *xsdt = table_at (t, get64 (t->data + 24), "XSDT");
  unsigned n = (get32 (xsdt + 4) - 36) / 8;

  for (unsigned i = 0; i < n; i++)
    {
      const uint8_t *tab = table_at (t, get64 (xsdt + 36 + 8 * i), NULL);

      if (memcmp (tab, sig, 4) == 0)
        return tab;
    }
  return NULL;
}

static void
test_rsdp_and_roots (gconstpointer data)
{
  Tables t;
  const uint8_t *rsdt, *xsdt;
  unsigned n;

  tables_build (&t, GPOINTER_TO_UINT (data));

  /* RSDP at offset 0, 16-byte aligned in the BIOS area. */
  g_assert_cmpuint (BASE % 16, ==, 0);
  g_assert_cmpmem (t.data, 8, "RSD PTR ", 8);
  g_assert_cmpint (sum (t.data, 20), ==, 0);
  g_assert_cmpint (sum (t.data, 36), ==, 0);
  g_assert_cmpuint (t.data[15], ==, 2);
  g_assert_cmpuint (get32 (t.data + 20), ==, 36);

  xsdt = table_at (&t, get64 (t.data + 24), "XSDT");
  rsdt = table_at (&t, get32 (t.data + 16), "RSDT");
  n = (get32 (xsdt + 4) - 36) / 8;
  g_assert_cmpuint ((get32 (xsdt + 4) - 36) % 8, ==, 0);
  g_assert_cmpuint (n, ==, 2);
  g_assert_cmpuint ((get32 (rsdt + 4) - 36) / 4, ==, n);
  for (unsigned i = 0; i < n; i++)
    {
      g_assert_cmpuint (get64 (xsdt + 36 + 8 * i), ==, get32 (rsdt + 36 + 4 * i));
      table_at (&t, get64 (xsdt + 36 + 8 * i), NULL);
    }
  g_assert_nonnull (find_table (&t, "FACP"));
  g_assert_nonnull (find_table (&t, "APIC"));

  g_bytes_unref (t.bytes);
}

static void
check_gas (const uint8_t *gas, uint8_t space, uint8_t width, uint64_t addr)
{
  g_assert_cmpuint (gas[0], ==, space);
  g_assert_cmpuint (gas[1], ==, width);
  g_assert_cmpuint (gas[2], ==, 0);
  g_assert_cmpuint (get64 (gas + 4), ==, addr);
}

static void
test_fadt (gconstpointer data)
{
  Tables t;
  const uint8_t *f, *facs, *dsdt;
  uint32_t flags;
  uint64_t facs_addr;

  tables_build (&t, GPOINTER_TO_UINT (data));
  f = find_table (&t, "FACP");
  g_assert_nonnull (f);

  g_assert_cmpuint (get32 (f + 4), ==, 276);
  g_assert_cmpuint (f[8], ==, 6);
  g_assert_cmpuint (get16 (f + 46), ==, VR_ACPI_SCI_IRQ);
  g_assert_cmpuint (get32 (f + 48), ==, 0);                 /* SMI_CMD */
  g_assert_cmpuint (get32 (f + 56), ==, VR_ACPI_PM1_EVT);
  g_assert_cmpuint (get32 (f + 60), ==, 0);
  g_assert_cmpuint (get32 (f + 64), ==, VR_ACPI_PM1_CNT);
  g_assert_cmpuint (get32 (f + 76), ==, VR_ACPI_PM_TMR);
  g_assert_cmpuint (get32 (f + 80), ==, VR_ACPI_GPE0);
  g_assert_cmpuint (f[88], ==, 4);                          /* PM1_EVT_LEN */
  g_assert_cmpuint (f[89], ==, 2);                          /* PM1_CNT_LEN */
  g_assert_cmpuint (f[91], ==, 4);                          /* PM_TMR_LEN */
  g_assert_cmpuint (f[92], ==, 4);                          /* GPE0_BLK_LEN */
  g_assert_cmpuint (f[108], ==, 0x32);                      /* CENTURY */
  g_assert_cmpuint (get16 (f + 109), ==, 0x0003);           /* LEGACY_DEVICES | 8042 */

  flags = get32 (f + 112);
  g_assert_true (flags & (1u << 0));                        /* WBINVD */
  g_assert_true (flags & (1u << 2));                        /* PROC_C1 */
  g_assert_false (flags & (1u << 4));                       /* fixed power button */
  g_assert_true (flags & (1u << 5));                        /* no fixed sleep button */
  g_assert_false (flags & (1u << 8));                       /* 24-bit PM timer */
  g_assert_true (flags & (1u << 10));                       /* RESET_REG_SUP */
  g_assert_false (flags & (1u << 20));                      /* not hardware-reduced */

  check_gas (f + 116, 1, 8, VR_RESET_PORT);
  g_assert_cmpuint (f[128], ==, VR_RESET_VALUE);

  facs_addr = get64 (f + 132);
  g_assert_cmpuint (get32 (f + 36), ==, 0);                 /* FIRMWARE_CTRL unused */
  g_assert_cmpuint (facs_addr % 64, ==, 0);
  g_assert_cmpuint (facs_addr - BASE + 64, <=, t.size);
  facs = t.data + (facs_addr - BASE);
  g_assert_cmpmem (facs, 4, "FACS", 4);
  g_assert_cmpuint (get32 (facs + 4), ==, 64);

  g_assert_cmpuint (get64 (f + 140), ==, get32 (f + 40));   /* X_DSDT == DSDT */
  dsdt = table_at (&t, get64 (f + 140), "DSDT");
  g_assert_cmpuint (dsdt[8], ==, 2);

  check_gas (f + 148, 1, 32, VR_ACPI_PM1_EVT);
  check_gas (f + 160, 0, 0, 0);
  check_gas (f + 172, 1, 16, VR_ACPI_PM1_CNT);
  check_gas (f + 208, 1, 32, VR_ACPI_PM_TMR);
  check_gas (f + 220, 1, 32, VR_ACPI_GPE0);

  g_bytes_unref (t.bytes);
}

static void
test_madt (gconstpointer data)
{
  Tables t;
  const uint8_t *m;
  uint32_t len;
  unsigned lapics = 0, ioapics = 0, overrides = 0, nmis = 0;
  bool irq0 = false, irq9 = false;

  tables_build (&t, GPOINTER_TO_UINT (data));
  m = find_table (&t, "APIC");
  g_assert_nonnull (m);
  len = get32 (m + 4);

  g_assert_cmpuint (get32 (m + 36), ==, VR_LAPIC_ADDR);
  g_assert_cmpuint (get32 (m + 40), ==, 1);                 /* PCAT_COMPAT */

  for (uint32_t off = 44; off < len;)
    {
      const uint8_t *e = m + off;

      g_assert_cmpuint (off + 2, <=, len);
      g_assert_cmpuint (e[1], >=, 2);
      g_assert_cmpuint (off + e[1], <=, len);
      switch (e[0])
        {
        case 0:
          g_assert_cmpuint (e[1], ==, 8);
          g_assert_cmpuint (e[2], ==, lapics);              /* UID */
          g_assert_cmpuint (e[3], ==, lapics);              /* APIC id */
          g_assert_cmpuint (get32 (e + 4), ==, 1);
          lapics++;
          break;
        case 1:
          g_assert_cmpuint (e[1], ==, 12);
          g_assert_cmpuint (get32 (e + 4), ==, VR_IOAPIC_ADDR);
          g_assert_cmpuint (get32 (e + 8), ==, 0);
          ioapics++;
          break;
        case 2:
          g_assert_cmpuint (e[1], ==, 10);
          g_assert_cmpuint (e[2], ==, 0);
          if (e[3] == 0)
            {
              g_assert_cmpuint (get32 (e + 4), ==, 2);
              g_assert_cmpuint (get16 (e + 8) & 0x0c, !=, 0x0c);  /* not level */
              irq0 = true;
            }
          else if (e[3] == 9)
            {
              g_assert_cmpuint (get32 (e + 4), ==, 9);
              g_assert_cmpuint (get16 (e + 8), ==, 0x000d);
              irq9 = true;
            }
          overrides++;
          break;
        case 4:
          g_assert_cmpuint (e[1], ==, 6);
          g_assert_cmpuint (e[2], ==, 0xff);
          g_assert_cmpuint (e[5], ==, 1);
          nmis++;
          break;
        default:
          g_assert_not_reached ();
        }
      off += e[1];
    }

  g_assert_cmpuint (lapics, ==, t.ncpus);
  g_assert_cmpuint (ioapics, ==, 1);
  g_assert_cmpuint (overrides, ==, 2);
  g_assert_true (irq0 && irq9);
  g_assert_cmpuint (nmis, ==, 1);

  g_bytes_unref (t.bytes);
}

/* ---- A walker for the AML subset the builder emits ------------------------------------ */

typedef struct
{
  unsigned devices;
  unsigned names;
  unsigned processors;
  bool     s5;
} AmlStats;

static size_t
aml_pkglen (const uint8_t *p, size_t avail, size_t *value)
{
  unsigned extra;

  g_assert_cmpuint (avail, >=, 1);
  extra = p[0] >> 6;
  g_assert_cmpuint (avail, >=, 1 + extra);
  if (extra == 0)
    *value = p[0] & 0x3f;
  else
    {
      g_assert_cmpuint (p[0] & 0x30, ==, 0);
      *value = p[0] & 0x0f;
      for (unsigned i = 0; i < extra; i++)
        *value |= (size_t) p[1 + i] << (4 + 8 * i);
    }
  return 1 + extra;
}

static size_t aml_term (const uint8_t *p, size_t avail, AmlStats *st);

static size_t
aml_namestring (const uint8_t *p, size_t avail)
{
  size_t n = 0;

  if (avail > 0 && p[0] == '\\')
    n = 1;
  g_assert_cmpuint (avail, >=, n + 4);
  for (unsigned i = 0; i < 4; i++)
    g_assert_true (g_ascii_isupper (p[n + i]) || g_ascii_isdigit (p[n + i]) || p[n + i] == '_');
  return n + 4;
}

/* A data object: integer, string, buffer or package. */
static size_t
aml_data (const uint8_t *p, size_t avail, AmlStats *st)
{
  size_t n, len;

  g_assert_cmpuint (avail, >=, 1);
  switch (p[0])
    {
    case 0x00:
    case 0x01:
    case 0xff:
      return 1;
    case 0x0a:
      g_assert_cmpuint (avail, >=, 2);
      return 2;
    case 0x0b:
      g_assert_cmpuint (avail, >=, 3);
      return 3;
    case 0x0c:
      g_assert_cmpuint (avail, >=, 5);
      return 5;
    case 0x0e:
      g_assert_cmpuint (avail, >=, 9);
      return 9;
    case 0x0d:
      {
        const uint8_t *end = memchr (p + 1, 0, avail - 1);
        g_assert_nonnull (end);
        return (size_t) (end - p) + 1;
      }
    case 0x11:  /* Buffer: PkgLength BufferSize bytes */
      n = 1 + aml_pkglen (p + 1, avail - 1, &len);
      g_assert_cmpuint (1 + len, <=, avail);
      {
        size_t sz = aml_data (p + n, 1 + len - n, st);
        uint64_t declared = p[n] == 0x0a ? p[n + 1] : p[n] == 0x0b ? get16 (p + n + 1) : p[n];
        g_assert_cmpuint (declared, ==, 1 + len - n - sz);
        /* The resource template must end with an end tag. */
        g_assert_cmpuint (p[len - 1], ==, 0x79);
      }
      return 1 + len;
    case 0x12:  /* Package: PkgLength NumElements elements */
      n = 1 + aml_pkglen (p + 1, avail - 1, &len);
      g_assert_cmpuint (1 + len, <=, avail);
      {
        unsigned count = p[n];
        size_t off = n + 1;

        for (unsigned i = 0; i < count; i++)
          off += aml_data (p + off, 1 + len - off, st);
        g_assert_cmpuint (off, ==, 1 + len);
      }
      return 1 + len;
    default:
      g_error ("unexpected AML data opcode 0x%02x", p[0]);
    }
  return 0;
}

static size_t
aml_term_list (const uint8_t *p, size_t len, AmlStats *st)
{
  size_t off = 0;

  while (off < len)
    off += aml_term (p + off, len - off, st);
  g_assert_cmpuint (off, ==, len);
  return len;
}

static size_t
aml_term (const uint8_t *p, size_t avail, AmlStats *st)
{
  size_t n, len, name;

  switch (p[0])
    {
    case 0x08:  /* Name */
      name = aml_namestring (p + 1, avail - 1);
      st->names++;
      if (memcmp (p + 1, "\\_S5_", 5) == 0)
        {
          static const uint8_t s5[] = { 0x12, 0x08, 0x04, 0x0a, VR_ACPI_S5_TYP, 0x0a,
                                        VR_ACPI_S5_TYP, 0x00, 0x00 };
          g_assert_cmpuint (avail, >=, 1 + name + sizeof s5);
          g_assert_cmpmem (p + 1 + name, sizeof s5, s5, sizeof s5);
          st->s5 = true;
        }
      if (memcmp (p + 1, "_HID", 4) == 0 && p[5] == 0x0d
          && avail >= 15 && memcmp (p + 6, "ACPI0007", 9) == 0)
        st->processors++;
      return 1 + name + aml_data (p + 1 + name, avail - 1 - name, st);

    case 0x10:  /* Scope */
      n = 1 + aml_pkglen (p + 1, avail - 1, &len);
      g_assert_cmpuint (1 + len, <=, avail);
      name = aml_namestring (p + n, 1 + len - n);
      aml_term_list (p + n + name, 1 + len - n - name, st);
      return 1 + len;

    case 0x5b:  /* ExtOp: Device */
      g_assert_cmpuint (avail, >=, 2);
      g_assert_cmpuint (p[1], ==, 0x82);
      n = 2 + aml_pkglen (p + 2, avail - 2, &len);
      g_assert_cmpuint (2 + len, <=, avail);
      name = aml_namestring (p + n, 2 + len - n);
      st->devices++;
      aml_term_list (p + n + name, 2 + len - n - name, st);
      return 2 + len;

    default:
      g_error ("unexpected AML opcode 0x%02x", p[0]);
    }
  return 0;
}

static void
test_dsdt (gconstpointer data)
{
  Tables t;
  const uint8_t *f, *dsdt;
  AmlStats st = { 0 };
  uint32_t len;

  tables_build (&t, GPOINTER_TO_UINT (data));
  f = find_table (&t, "FACP");
  dsdt = table_at (&t, get64 (f + 140), "DSDT");
  len = get32 (dsdt + 4);

  aml_term_list (dsdt + 36, len - 36, &st);
  g_assert_true (st.s5);
  /* PCI0, COM1, KBD_, MOU_, RTC_, RES0 and one per processor. */
  g_assert_cmpuint (st.devices, ==, 6 + t.ncpus);
  g_assert_cmpuint (st.processors, ==, t.ncpus);

  /* The PCI root bridge's _HID is EISAID ("PNP0A03"). */
  {
    static const uint8_t hid[] = { 0x08, '_', 'H', 'I', 'D', 0x0c, 0x41, 0xd0, 0x0a, 0x03 };
    g_assert_nonnull (memmem (dsdt, len, hid, sizeof hid));
  }

  g_bytes_unref (t.bytes);
}

static void
test_iasl (void)
{
  g_autofree char *iasl = g_find_program_in_path ("iasl");
  g_autoptr (GError) error = NULL;
  g_autofree char *dir = NULL;
  g_autofree char *aml = NULL;
  g_autofree char *dsl = NULL;
  g_autofree char *text = NULL;
  g_autofree char *out = NULL;
  g_autofree char *err = NULL;
  Tables t;
  const uint8_t *f, *dsdt;
  int status;

  if (!iasl)
    {
      g_test_skip ("iasl (acpica-tools) is not installed");
      return;
    }

  tables_build (&t, 4);
  f = find_table (&t, "FACP");
  dsdt = table_at (&t, get64 (f + 140), "DSDT");

  dir = g_dir_make_tmp ("vireo-acpi-XXXXXX", &error);
  g_assert_no_error (error);
  aml = g_build_filename (dir, "dsdt.aml", NULL);
  dsl = g_build_filename (dir, "dsdt.dsl", NULL);
  g_file_set_contents (aml, (const char *) dsdt, get32 (dsdt + 4), &error);
  g_assert_no_error (error);

  {
    const char *argv[] = { iasl, "-d", aml, NULL };
    g_spawn_sync (dir, (char **) argv, NULL, G_SPAWN_DEFAULT, NULL, NULL, &out, &err, &status,
                  &error);
  }
  g_assert_no_error (error);
  if (!g_spawn_check_wait_status (status, NULL))
    g_error ("iasl -d failed:\n%s\n%s", out, err);
  g_file_get_contents (dsl, &text, NULL, &error);
  g_assert_no_error (error);
  g_assert_nonnull (strstr (text, "_S5_"));
  g_assert_nonnull (strstr (text, "PNP0A03"));
  g_assert_nonnull (strstr (text, "PNP0501"));
  g_assert_nonnull (strstr (text, "0xFEBFFFFF"));

  /* And it compiles back without errors. */
  {
    const char *argv[] = { iasl, "-p", "re", dsl, NULL };
    g_clear_pointer (&out, g_free);
    g_clear_pointer (&err, g_free);
    g_spawn_sync (dir, (char **) argv, NULL, G_SPAWN_DEFAULT, NULL, NULL, &out, &err, &status,
                  &error);
  }
  g_assert_no_error (error);
  if (!g_spawn_check_wait_status (status, NULL))
    g_error ("iasl could not compile the disassembly:\n%s\n%s", out, err);

  {
    g_autofree char *re = g_build_filename (dir, "re.aml", NULL);
    g_unlink (re);
  }
  g_unlink (aml);
  g_unlink (dsl);
  g_rmdir (dir);
  g_bytes_unref (t.bytes);
}

/* ---- The fw_cfg files and their linker/loader script ---------------------------------- */

/* SeaBIOS src/fw/romfile_loader.h: 128-byte little-endian commands. */
#define CMD_SIZE      128
#define NAME_SIZE     56
#define CMD_ALLOCATE  1
#define CMD_POINTER   2
#define CMD_CHECKSUM  3
#define ZONE_HIGH     1
#define ZONE_FSEG     2

typedef struct
{
  const char *name;
  GBytes     *bytes;
  uint8_t    *data;       /* after ALLOCATE: the firmware's copy */
  size_t      size;
  uint64_t    addr;
  uint32_t    align;
  uint8_t     zone;
} FwFile;

/* Bytes [start, start + len) of file @file. */
typedef struct
{
  unsigned file;
  uint32_t start;
  uint32_t len;
} Range;

static bool
ranges_overlap (const Range *a, const Range *b)
{
  return a->file == b->file && a->start < b->start + b->len && b->start < a->start + a->len;
}

typedef struct
{
  FwFile   files[2];      /* etc/acpi/rsdp, etc/acpi/tables */
  GBytes  *loader;
  unsigned ncpus;
} FwCfg;

static void
fw_cfg_build (FwCfg *fw, unsigned ncpus)
{
  VrAcpiConfig config = { .ncpus = ncpus };

  memset (fw, 0, sizeof *fw);
  g_assert_true (vr_acpi_build_fw_cfg (&config, &fw->files[0].bytes, &fw->files[1].bytes,
                                       &fw->loader));
  fw->files[0].name = VR_ACPI_FW_CFG_RSDP;
  fw->files[1].name = VR_ACPI_FW_CFG_TABLES;
  for (unsigned i = 0; i < 2; i++)
    {
      g_assert_nonnull (fw->files[i].bytes);
      fw->files[i].size = g_bytes_get_size (fw->files[i].bytes);
      g_assert_cmpuint (fw->files[i].size, >, 0);
    }
  g_assert_cmpstr (VR_ACPI_FW_CFG_LOADER, ==, "etc/table-loader");
  fw->ncpus = ncpus;
}

static void
fw_cfg_clear (FwCfg *fw)
{
  for (unsigned i = 0; i < 2; i++)
    {
      g_clear_pointer (&fw->files[i].bytes, g_bytes_unref);
      g_clear_pointer (&fw->files[i].data, g_free);
    }
  g_clear_pointer (&fw->loader, g_bytes_unref);
}

/* A file name field: NUL-terminated inside its 56 bytes, zero after; the file it names. */
static FwFile *
fw_cfg_file (FwCfg *fw, const uint8_t *field)
{
  const uint8_t *nul = memchr (field, 0, NAME_SIZE);

  g_assert_nonnull (nul);
  for (const uint8_t *p = nul; p < field + NAME_SIZE; p++)
    g_assert_cmpuint (*p, ==, 0);
  for (unsigned i = 0; i < 2; i++)
    if (strcmp ((const char *) field, fw->files[i].name) == 0)
      return &fw->files[i];
  g_error ("the loader names a file there is none of: %s", (const char *) field);
  return NULL;
}

/* The script is well formed: every check SeaBIOS makes, and the order it relies on. */
static void
test_loader_script (gconstpointer data)
{
  g_autoptr (GArray) pointers = g_array_new (FALSE, FALSE, sizeof (Range));
  g_autoptr (GArray) sums = g_array_new (FALSE, FALSE, sizeof (Range));
  const uint8_t *script;
  size_t size;
  unsigned allocated = 0;
  FwCfg fw;

  fw_cfg_build (&fw, GPOINTER_TO_UINT (data));
  script = g_bytes_get_data (fw.loader, &size);
  g_assert_cmpuint (size, >, 0);
  g_assert_cmpuint (size % CMD_SIZE, ==, 0);

  for (size_t at = 0; at < size; at += CMD_SIZE)
    {
      const uint8_t *cmd = script + at;
      FwFile *f, *src;
      uint32_t off, start, len;
      uint8_t width;
      uint64_t value = 0;

      switch (get32 (cmd))
        {
        case CMD_ALLOCATE:
          f = fw_cfg_file (&fw, cmd + 4);
          g_assert_cmpuint (f->align, ==, 0);                 /* exactly once */
          f->align = get32 (cmd + 60);
          f->zone = cmd[64];
          g_assert_cmpuint (f->align, !=, 0);
          g_assert_cmpuint (f->align & (f->align - 1), ==, 0);
          for (size_t i = 65; i < CMD_SIZE; i++)
            g_assert_cmpuint (cmd[i], ==, 0);
          allocated++;
          break;

        case CMD_POINTER:
          f = fw_cfg_file (&fw, cmd + 4);
          src = fw_cfg_file (&fw, cmd + 60);
          g_assert_cmpuint (f->align, !=, 0);                 /* allocated before use */
          g_assert_cmpuint (src->align, !=, 0);
          off = get32 (cmd + 116);
          width = cmd[120];
          g_assert_true (width == 1 || width == 2 || width == 4 || width == 8);
          g_assert_cmpuint ((uint64_t) off + width, <=, f->size);
          /* It points inside the source file. */
          {
            const uint8_t *fdata = g_bytes_get_data (f->bytes, NULL);

            for (unsigned i = 0; i < width; i++)
              value |= (uint64_t) fdata[off + i] << (8 * i);
          }
          g_assert_cmpuint (value, <, src->size);
          /* Not inside a range already checksummed, nor over another pointer. */
          {
            Range r = { (unsigned) (f - fw.files), off, width };

            for (guint i = 0; i < sums->len; i++)
              g_assert_false (ranges_overlap (&r, &g_array_index (sums, Range, i)));
            for (guint i = 0; i < pointers->len; i++)
              g_assert_false (ranges_overlap (&r, &g_array_index (pointers, Range, i)));
            g_array_append_val (pointers, r);
          }
          break;

        case CMD_CHECKSUM:
          f = fw_cfg_file (&fw, cmd + 4);
          g_assert_cmpuint (f->align, !=, 0);
          off = get32 (cmd + 60);
          start = get32 (cmd + 64);
          len = get32 (cmd + 68);
          g_assert_cmpuint (len, >, 0);
          g_assert_cmpuint ((uint64_t) start + len, <=, f->size);
          g_assert_cmpuint (off, >=, start);                  /* the result byte is summed */
          g_assert_cmpuint (off, <, start + len);
          {
            Range r = { (unsigned) (f - fw.files), start, len };
            g_array_append_val (sums, r);
          }
          break;

        default:
          g_error ("unknown loader command %u", get32 (cmd));
        }
    }

  g_assert_cmpuint (allocated, ==, 2);
  /* The RSDP goes where a guest scans for it, the tables anywhere, FACS-aligned. */
  g_assert_cmpuint (fw.files[0].zone, ==, ZONE_FSEG);
  g_assert_cmpuint (fw.files[0].align, ==, 16);
  g_assert_cmpuint (fw.files[0].size, ==, 36);
  g_assert_cmpuint (fw.files[1].zone, ==, ZONE_HIGH);
  g_assert_cmpuint (fw.files[1].align, ==, 64);
  /* RSDT + XSDT entries (2 each), the RSDP's two, FADT's DSDT, X_DSDT and X_FACS. */
  g_assert_cmpuint (pointers->len, ==, 9);
  /* Six tables and the RSDP's two checksums. */
  g_assert_cmpuint (sums->len, ==, 7);

  fw_cfg_clear (&fw);
}

/*
 * Runs the script as SeaBIOS does, with the files at @rsdp_addr and @tables_addr: ALLOCATE
 * copies a file (the address it gets must respect the alignment asked for), ADD_POINTER adds
 * the source file's address to the value in place, ADD_CHECKSUM subtracts the range's sum.
 */
static void
fw_cfg_link (FwCfg *fw, uint64_t rsdp_addr, uint64_t tables_addr)
{
  const uint8_t *script;
  size_t size;

  fw->files[0].addr = rsdp_addr;
  fw->files[1].addr = tables_addr;
  script = g_bytes_get_data (fw->loader, &size);
  for (size_t at = 0; at < size; at += CMD_SIZE)
    {
      const uint8_t *cmd = script + at;
      FwFile *f = fw_cfg_file (fw, cmd + 4);

      switch (get32 (cmd))
        {
        case CMD_ALLOCATE:
          g_assert_cmpuint (f->addr % get32 (cmd + 60), ==, 0);
          g_assert_null (f->data);
          f->data = g_memdup2 (g_bytes_get_data (f->bytes, NULL), f->size);
          break;

        case CMD_POINTER:
          {
            FwFile *src = fw_cfg_file (fw, cmd + 60);
            uint32_t off = get32 (cmd + 116);
            uint8_t width = cmd[120];
            uint64_t v = 0;

            g_assert_nonnull (f->data);
            g_assert_nonnull (src->data);
            for (unsigned i = 0; i < width; i++)
              v |= (uint64_t) f->data[off + i] << (8 * i);
            v += src->addr;
            for (unsigned i = 0; i < width; i++)
              f->data[off + i] = (uint8_t) (v >> (8 * i));
          }
          break;

        case CMD_CHECKSUM:
          g_assert_nonnull (f->data);
          f->data[get32 (cmd + 60)] -= sum (f->data + get32 (cmd + 64), get32 (cmd + 68));
          break;

        default:
          g_assert_not_reached ();
        }
    }
}

/* Guest memory after linking: @len bytes at @addr, inside one of the files. */
static const uint8_t *
fw_cfg_at (FwCfg *fw, uint64_t addr, size_t len)
{
  for (unsigned i = 0; i < 2; i++)
    {
      FwFile *f = &fw->files[i];

      if (addr >= f->addr && addr - f->addr + len <= f->size)
        return f->data + (addr - f->addr);
    }
  g_error ("0x%" G_GINT64_MODIFIER "x+%zu is in neither file", addr, len);
  return NULL;
}

static const uint8_t *
fw_cfg_table (FwCfg *fw, uint64_t addr, const char *sig)
{
  const uint8_t *p = fw_cfg_at (fw, addr, 36);
  uint32_t len = get32 (p + 4);

  g_assert_cmpmem (p, 4, sig, 4);
  g_assert_cmpuint (len, >=, 36);
  p = fw_cfg_at (fw, addr, len);
  g_assert_cmpint (sum (p, len), ==, 0);
  return p;
}

/* @got and @want are equal but for the byte ranges (offset, length) in @skip, 0-ended. */
static void
assert_same_but (const uint8_t *got, const uint8_t *want, size_t len, const size_t *skip)
{
  g_autofree bool *ignore = g_new0 (bool, len);

  for (; skip[1] != 0; skip += 2)
    for (size_t i = skip[0]; i < skip[0] + skip[1] && i < len; i++)
      ignore[i] = true;
  for (size_t i = 0; i < len; i++)
    if (!ignore[i] && got[i] != want[i])
      g_error ("byte %zu differs: 0x%02x, want 0x%02x", i, got[i], want[i]);
}

/* The linked tables are the tables of vr_acpi_build(), wherever the firmware put them. */
static void
check_linked (FwCfg *fw, Tables *ref)
{
  static const size_t rsdp_skip[] = { 8, 1, 16, 4, 24, 8, 32, 1, 0, 0 };
  static const size_t fadt_skip[] = { 9, 1, 40, 4, 132, 16, 0, 0 };
  static const size_t table_skip[] = { 9, 1, 0, 0 };
  const uint8_t *rsdp = fw_cfg_at (fw, fw->files[0].addr, 36);
  const uint8_t *xsdt, *rsdt, *ref_xsdt;
  unsigned n;

  /* RSDP: where it was put, both checksums right. */
  g_assert_cmpmem (rsdp, 8, "RSD PTR ", 8);
  g_assert_cmpint (sum (rsdp, 20), ==, 0);
  g_assert_cmpint (sum (rsdp, 36), ==, 0);
  assert_same_but (rsdp, ref->data, 36, rsdp_skip);

  xsdt = fw_cfg_table (fw, get64 (rsdp + 24), "XSDT");
  rsdt = fw_cfg_table (fw, get32 (rsdp + 16), "RSDT");
  ref_xsdt = table_at (ref, get64 (ref->data + 24), "XSDT");
  g_assert_cmpuint (get32 (xsdt + 4), ==, get32 (ref_xsdt + 4));
  assert_same_but (xsdt, ref_xsdt, 36, table_skip);
  assert_same_but (rsdt, table_at (ref, get32 (ref->data + 16), "RSDT"), 36, table_skip);
  n = (get32 (xsdt + 4) - 36) / 8;
  g_assert_cmpuint (get32 (rsdt + 4), ==, 36 + 4 * n);

  for (unsigned i = 0; i < n; i++)
    {
      uint64_t addr = get64 (xsdt + 36 + 8 * i);
      const uint8_t *want = table_at (ref, get64 (ref_xsdt + 36 + 8 * i), NULL);
      const uint8_t *got = fw_cfg_table (fw, addr, (const char *) want);
      uint32_t len = get32 (want + 4);

      g_assert_cmpuint (get32 (rsdt + 36 + 4 * i), ==, addr);
      g_assert_cmpuint (get32 (got + 4), ==, len);
      if (memcmp (want, "FACP", 4) == 0)
        {
          const uint8_t *facs, *dsdt;
          const uint8_t *ref_dsdt = table_at (ref, get64 (want + 140), "DSDT");
          uint64_t facs_addr = get64 (got + 132);

          assert_same_but (got, want, len, fadt_skip);
          /* X_FIRMWARE_CTRL → FACS, 64-byte aligned; X_DSDT == DSDT → DSDT. */
          g_assert_cmpuint (facs_addr % 64, ==, 0);
          facs = fw_cfg_at (fw, facs_addr, 64);
          g_assert_cmpmem (facs, 64, ref->data + (get64 (want + 132) - BASE), 64);
          g_assert_cmpuint (get64 (got + 140), ==, get32 (got + 40));
          dsdt = fw_cfg_table (fw, get64 (got + 140), "DSDT");
          g_assert_cmpuint (get32 (dsdt + 4), ==, get32 (ref_dsdt + 4));
          g_assert_cmpmem (dsdt, get32 (dsdt + 4), ref_dsdt, get32 (ref_dsdt + 4));
        }
      else
        assert_same_but (got, want, len, table_skip);
    }
}

static void
test_loader_link (gconstpointer data)
{
  unsigned ncpus = GPOINTER_TO_UINT (data);
  const uint8_t *rsdp_file;
  uint64_t tables_at;
  FwCfg fw;
  Tables ref;

  tables_build (&ref, ncpus);

  /*
   * Where vr_acpi_build() puts the two files (the RSDP at BASE, the tables where its RSDT
   * address says, less the RSDT's offset in the tables file): linking there gives exactly
   * its blob.
   */
  fw_cfg_build (&fw, ncpus);
  rsdp_file = g_bytes_get_data (fw.files[0].bytes, NULL);
  tables_at = get32 (ref.data + 16) - get32 (rsdp_file + 16);
  g_assert_cmpuint (tables_at, >=, BASE + 36);
  fw_cfg_link (&fw, BASE, tables_at);
  g_assert_cmpmem (fw.files[0].data, fw.files[0].size, ref.data, 36);
  g_assert_cmpuint (tables_at - BASE + fw.files[1].size, ==, ref.size);
  g_assert_cmpmem (fw.files[1].data, fw.files[1].size, ref.data + (tables_at - BASE),
                   fw.files[1].size);
  check_linked (&fw, &ref);
  fw_cfg_clear (&fw);

  /* Where SeaBIOS might: the RSDP in the F segment, the tables at the top of low RAM. */
  fw_cfg_build (&fw, ncpus);
  fw_cfg_link (&fw, 0xf5a40, 0x7ffdf000 + 0x40);
  check_linked (&fw, &ref);
  fw_cfg_clear (&fw);

  g_bytes_unref (ref.bytes);
}

static void
test_checksum_helper (void)
{
  uint8_t buf[8] = { 1, 2, 3, 4, 5, 6, 7, 0 };

  buf[7] = vr_acpi_checksum (buf, sizeof buf);
  g_assert_cmpint (sum (buf, sizeof buf), ==, 0);
}

int
main (int argc, char **argv)
{
  static const unsigned cpus[] = { 1, 4, 64 };

  g_test_init (&argc, &argv, NULL);

  for (unsigned i = 0; i < G_N_ELEMENTS (cpus); i++)
    {
      gconstpointer n = GUINT_TO_POINTER (cpus[i]);
      g_autofree char *p1 = g_strdup_printf ("/acpi/%u-cpus/rsdp", cpus[i]);
      g_autofree char *p2 = g_strdup_printf ("/acpi/%u-cpus/fadt", cpus[i]);
      g_autofree char *p3 = g_strdup_printf ("/acpi/%u-cpus/madt", cpus[i]);
      g_autofree char *p4 = g_strdup_printf ("/acpi/%u-cpus/dsdt", cpus[i]);
      g_autofree char *p5 = g_strdup_printf ("/acpi/%u-cpus/loader-script", cpus[i]);
      g_autofree char *p6 = g_strdup_printf ("/acpi/%u-cpus/loader-link", cpus[i]);

      g_test_add_data_func (p1, n, test_rsdp_and_roots);
      g_test_add_data_func (p2, n, test_fadt);
      g_test_add_data_func (p3, n, test_madt);
      g_test_add_data_func (p4, n, test_dsdt);
      g_test_add_data_func (p5, n, test_loader_script);
      g_test_add_data_func (p6, n, test_loader_link);
    }
  g_test_add_func ("/acpi/checksum", test_checksum_helper);
  g_test_add_func ("/acpi/iasl", test_iasl);

  return g_test_run ();
}
