/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * acpi: walks RSDP -> XSDT/RSDT -> tables, checks every checksum, finds the FADT,
 * MADT, DSDT and FACS, parses \_S5 from the DSDT and powers off via PM1a_CNT.
 */

#include "guest.h"

typedef struct __attribute__ ((packed))
{
  char     signature[8];
  uint8_t  checksum;
  char     oem_id[6];
  uint8_t  revision;
  uint32_t rsdt;
  uint32_t length;
  uint64_t xsdt;
  uint8_t  ext_checksum;
} Rsdp;

static bool
check_table (const AcpiHeader *t, const char *via)
{
  if (!t)
    return false;
  if (t->length < sizeof *t || t->length > 1024 * 1024)
    guest_fail ("%s: table at %p has a bad length %u", via, (const void *) t, t->length);
  if (acpi_checksum (t, t->length))
    guest_fail ("%s: table %.4s has a bad checksum", via, t->signature);
  return true;
}

static void
walk_root (const AcpiHeader *root, int entry_size, const char *name)
{
  int n;

  check_table (root, name);
  n = (root->length - sizeof *root) / entry_size;
  printf ("info: %s:", name);
  for (int i = 0; i < n; i++)
    {
      uint64_t a = 0;
      const AcpiHeader *t;

      memcpy (&a, (const uint8_t *) (root + 1) + entry_size * i, entry_size);
      t = (const AcpiHeader *) (uintptr_t) a;
      check_table (t, name);
      printf (" %c%c%c%c", t->signature[0], t->signature[1], t->signature[2], t->signature[3]);
    }
  printf ("\n");
}

int
guest_main (void)
{
  const Rsdp *rsdp;
  const AcpiHeader *fadt, *madt, *dsdt;
  const uint8_t *f;
  uint32_t dsdt32, facs32, pm1a;
  uint64_t xdsdt = 0, xfacs = 0;
  uint8_t a, b;
  MadtInfo mi;

  printf ("acpi test\n");
  printf ("boot: %s\n", boot_protocol_name ());
  rsdp = (const Rsdp *) (uintptr_t) acpi_find_rsdp ();
  if (!rsdp)
    guest_fail ("no RSDP");
  printf ("rsdp: found\n");
  printf ("info: rsdp at %p revision %u oem '%c%c%c%c%c%c'\n", (const void *) rsdp,
          rsdp->revision, rsdp->oem_id[0], rsdp->oem_id[1], rsdp->oem_id[2], rsdp->oem_id[3],
          rsdp->oem_id[4], rsdp->oem_id[5]);
  if (rsdp->revision >= 2 && rsdp->xsdt)
    walk_root ((const AcpiHeader *) (uintptr_t) rsdp->xsdt, 8, "XSDT");
  if (rsdp->rsdt)
    walk_root ((const AcpiHeader *) (uintptr_t) rsdp->rsdt, 4, "RSDT");
  if (!(rsdp->revision >= 2 && rsdp->xsdt) && !rsdp->rsdt)
    guest_fail ("neither XSDT nor RSDT");
  printf ("root table: ok\n");

  fadt = acpi_find_table ("FACP", 0);
  if (!check_table (fadt, "FACP"))
    guest_fail ("no FADT");
  printf ("FACP: ok\n");
  madt = acpi_find_table ("APIC", 0);
  if (!check_table (madt, "APIC") || !acpi_parse_madt (&mi) || mi.ncpus < 1)
    guest_fail ("no usable MADT");
  printf ("APIC: ok\n");

  f = (const uint8_t *) fadt;
  memcpy (&facs32, f + 36, 4);
  memcpy (&dsdt32, f + 40, 4);
  memcpy (&pm1a, f + 64, 4);
  if (fadt->length >= 148)
    {
      memcpy (&xfacs, f + 132, 8);
      memcpy (&xdsdt, f + 140, 8);
    }
  if (xdsdt && dsdt32 && xdsdt != dsdt32)
    guest_fail ("FADT: DSDT 0x%x and X_DSDT 0x%lx differ", dsdt32, xdsdt);
  dsdt = (const AcpiHeader *) (uintptr_t) (xdsdt ? xdsdt : dsdt32);
  if (!check_table (dsdt, "DSDT") || memcmp (dsdt->signature, "DSDT", 4))
    guest_fail ("no DSDT");
  printf ("DSDT: ok\n");
  if (xfacs || facs32)
    {
      const AcpiHeader *facs = (const AcpiHeader *) (uintptr_t) (xfacs ? xfacs : facs32);
      if (memcmp (facs->signature, "FACS", 4) || facs->length < 64)
        guest_fail ("bad FACS");
      printf ("FACS: ok\n");
    }
  else
    printf ("info: no FACS\n");

  if (!acpi_s5 (&a, &b))
    guest_fail ("no \\_S5 package in the DSDT");
  printf ("info: _S5 SLP_TYPa %u SLP_TYPb %u, PM1a_CNT 0x%x\n", a, b, pm1a);
  printf ("_S5: ok\n");
  printf ("powering off\n");
  acpi_poweroff ();
  guest_fail ("ACPI power-off did not stop the machine");
}
