/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * The SMBIOS builder: walks the structure table as a reader does (formatted area, string
 * set, handle), checks each structure's length, strings and contents for several machine
 * shapes, the entry point's checksums and lengths against the table (as SeaBIOS checks them
 * before taking the table), and decodes the lot with dmidecode --from-dump when it is
 * installed.
 */

#include "config.h"

#include <glib/gstdio.h>
#include <string.h>

#include "vr-machine.h"
#include "vr-memory.h"
#include "vr-smbios.h"

#define MIB (1ull << 20)
#define GIB (1ull << 30)

#define UUID "5f0e2a1c-3b4d-4e6f-8a9b-0c1d2e3f4a5b"

typedef struct
{
  const char        *name;
  unsigned           ncpus;
  uint64_t           ram_low;
  uint64_t           ram_high;
  VrSmbiosEntryPoint entry_point;
  const char        *uuid;
  const char        *serial;
} Case;

static const Case cases[] = {
  { "1-cpu-512m-64", 1, 512 * MIB, 0, VR_SMBIOS_ENTRY_POINT_64, UUID, NULL },
  { "4-cpus-8g-64", 4, 3 * GIB, 5 * GIB, VR_SMBIOS_ENTRY_POINT_64, UUID, "VR-0001" },
  { "64-cpus-40g-32", 64, 3 * GIB, 37 * GIB, VR_SMBIOS_ENTRY_POINT_32, UUID, "VR-0002" },
  { "2-cpus-odd-32", 2, 5 * MIB + 4096, 0, VR_SMBIOS_ENTRY_POINT_32, NULL, NULL },
  { "8-cpus-1t-64", 8, 3 * GIB, 1021 * GIB, VR_SMBIOS_ENTRY_POINT_64, UUID, NULL },
};

typedef struct
{
  const uint8_t *p;          /* the formatted area */
  uint8_t        type;
  uint8_t        length;
  uint16_t       handle;
  const char    *strings[256];
  unsigned       nstrings;
  size_t         size;       /* with the string set */
} Structure;

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

/* Splits the table into structures, checking every bound on the way. */
static GArray *
walk (const uint8_t *data, size_t len)
{
  GArray *all = g_array_new (FALSE, TRUE, sizeof (Structure));
  size_t off = 0;

  while (off < len)
    {
      Structure s = { 0 };
      size_t at;

      g_assert_cmpuint (off + 4, <=, len);
      s.p = data + off;
      s.type = s.p[0];
      s.length = s.p[1];
      s.handle = get16 (s.p + 2);
      g_assert_cmpuint (s.length, >=, 4);
      /* The formatted area and at least the two NULs of an empty string set. */
      g_assert_cmpuint (off + s.length + 2, <=, len);
      at = off + s.length;
      if (data[at] == 0)
        {
          /* No strings: two NULs. */
          g_assert_cmpuint (data[at + 1], ==, 0);
          at += 2;
        }
      else
        {
          while (data[at] != 0)
            {
              const uint8_t *end = memchr (data + at, 0, len - at);

              g_assert_nonnull (end);
              g_assert_cmpuint (s.nstrings, <, 255);
              s.strings[++s.nstrings] = (const char *) data + at;
              at = (size_t) (end - data) + 1;
              g_assert_cmpuint (at, <, len);
            }
          at++;
        }
      s.size = at - off;
      g_array_append_val (all, s);
      off = at;
    }
  g_assert_cmpuint (off, ==, len);
  return all;
}

/* The formatted length of each type we emit, and where its string references are. */
typedef struct
{
  uint8_t type;
  uint8_t length;
  uint8_t length_32;       /* under the 2.1 entry point (SMBIOS 2.8), if different */
  uint8_t strings[8];      /* offsets, 0-ended */
} Layout;

static const Layout layouts[] = {
  { 0, 0x18, 0, { 0x04, 0x05, 0x08 } },
  { 1, 0x1b, 0, { 0x04, 0x05, 0x06, 0x07, 0x19, 0x1a } },
  { 3, 0x16, 0, { 0x04, 0x06, 0x07, 0x08, 0x15 } },
  { 4, 0x30, 0x2a, { 0x04, 0x07, 0x10, 0x20, 0x21, 0x22 } },
  { 16, 0x17, 0, { 0 } },
  { 17, 0x28, 0, { 0x10, 0x11, 0x17, 0x18, 0x19, 0x1a } },
  { 19, 0x1f, 0, { 0 } },
  { 32, 0x0b, 0, { 0 } },
  { 127, 0x04, 0, { 0 } },
};

static const char *
string_at (const Structure *s, unsigned off)
{
  unsigned i = s->p[off];

  g_assert_cmpuint (i, <=, s->nstrings);
  return i ? s->strings[i] : NULL;
}

static void
check_layout (const Structure *s, bool v32)
{
  const Layout *l = NULL;
  bool used[256] = { false };

  for (unsigned i = 0; i < G_N_ELEMENTS (layouts); i++)
    if (layouts[i].type == s->type)
      l = &layouts[i];
  g_assert_nonnull (l);
  g_assert_cmpuint (s->length, ==, v32 && l->length_32 ? l->length_32 : l->length);

  /* Every reference is to a string of the set, every string is referred to. */
  for (unsigned i = 0; l->strings[i]; i++)
    {
      g_assert_cmpuint (l->strings[i], <, s->length);
      used[s->p[l->strings[i]]] = true;
      string_at (s, l->strings[i]);
    }
  for (unsigned i = 1; i <= s->nstrings; i++)
    {
      g_assert_true (used[i]);
      g_assert_true (g_utf8_validate (s->strings[i], -1, NULL));
    }
}

/* The UUID's text as SMBIOS 2.6+ stores it: the first three fields little-endian. */
static void
uuid_bytes (const char *text, uint8_t out[16])
{
  static const unsigned order[16] = { 3, 2, 1, 0, 5, 4, 7, 6, 8, 9, 10, 11, 12, 13, 14, 15 };
  uint8_t be[16];
  unsigned n = 0;

  for (const char *p = text; *p; p++)
    if (*p != '-')
      {
        g_assert_cmpuint (n, <, 32);
        if (n % 2 == 0)
          be[n / 2] = (uint8_t) (g_ascii_xdigit_value (*p) << 4);
        else
          be[n / 2] |= (uint8_t) g_ascii_xdigit_value (*p);
        n++;
      }
  g_assert_cmpuint (n, ==, 32);
  for (unsigned i = 0; i < 16; i++)
    out[i] = be[order[i]];
}

typedef struct
{
  GBytes        *tables;
  GBytes        *anchor;
  const uint8_t *data;
  size_t         size;
  const uint8_t *ep;
  size_t         ep_size;
} Smbios;

static void
smbios_build (Smbios *sm, const Case *c)
{
  VrSmbiosConfig config = {
    .ncpus = c->ncpus,
    .ram_low = c->ram_low,
    .ram_high = c->ram_high,
    .uuid = c->uuid,
    .serial = c->serial,
    .version = "1.2.3",
    .firmware_size = 128 << 10,
    .cpuid_signature = 0x000806ec,
    .cpuid_features = 0x178bfbff,
    .entry_point = c->entry_point,
  };

  sm->tables = vr_smbios_build (&config, &sm->anchor);
  g_assert_nonnull (sm->tables);
  g_assert_nonnull (sm->anchor);
  sm->data = g_bytes_get_data (sm->tables, &sm->size);
  sm->ep = g_bytes_get_data (sm->anchor, &sm->ep_size);
}

static void
smbios_clear (Smbios *sm)
{
  g_bytes_unref (sm->tables);
  g_bytes_unref (sm->anchor);
}

static void
test_structures (gconstpointer data)
{
  const Case *c = data;
  g_autoptr (GHashTable) handles = g_hash_table_new (NULL, NULL);
  g_autoptr (GArray) all = NULL;
  bool v32 = c->entry_point == VR_SMBIOS_ENTRY_POINT_32;
  uint64_t ram = c->ram_low + c->ram_high;
  uint64_t dimm_total = 0;
  unsigned counts[128] = { 0 };
  unsigned ndimms = 0, nranges = 0;
  uint16_t array_handle = 0;
  Smbios sm;

  smbios_build (&sm, c);
  all = walk (sm.data, sm.size);

  for (guint i = 0; i < all->len; i++)
    {
      const Structure *s = &g_array_index (all, Structure, i);

      g_assert_cmpuint (s->type, <, 128);
      counts[s->type]++;
      check_layout (s, v32);
      g_assert_false (g_hash_table_contains (handles, GUINT_TO_POINTER (s->handle)));
      g_hash_table_add (handles, GUINT_TO_POINTER (s->handle));
      g_assert_cmpuint (s->handle, <, 0xfeff);     /* 0xff00 up are reserved */

      switch (s->type)
        {
        case 0:
          g_assert_cmpstr (string_at (s, 0x04), ==, "Vireo");
          g_assert_cmpstr (string_at (s, 0x05), ==, "Vireo 1.2.3");
          g_assert_cmpuint (s->p[0x14], ==, 1);    /* system BIOS major.minor release */
          g_assert_cmpuint (s->p[0x15], ==, 2);
          g_assert_cmpuint (s->p[0x13] & 0x10, ==, 0x10); /* a virtual machine */
          g_assert_cmpuint (s->p[0x09], ==, 1);    /* ROM size: 128 KiB */
          break;

        case 1:
          {
            uint8_t want[16] = { 0 };

            g_assert_cmpstr (string_at (s, 0x04), ==, "Vireo");
            g_assert_cmpstr (string_at (s, 0x05), ==, "Vireo Virtual Machine");
            g_assert_cmpstr (string_at (s, 0x07), ==, c->serial);
            if (c->uuid)
              uuid_bytes (c->uuid, want);
            g_assert_cmpmem (s->p + 0x08, 16, want, 16);
          }
          break;

        case 3:
          g_assert_cmpuint (s->p[0x05], ==, 0x01);  /* other */
          break;

        case 4:
          g_assert_cmpuint (s->p[0x05], ==, 3);     /* central processor */
          g_assert_cmpuint (get32 (s->p + 0x08), ==, 0x000806ec);
          g_assert_cmpuint (s->p[0x18], ==, 0x41);  /* populated, enabled */
          g_assert_cmpuint (s->p[0x23], ==, c->ncpus);
          g_assert_cmpuint (s->p[0x24], ==, c->ncpus);
          g_assert_cmpuint (s->p[0x25], ==, c->ncpus);
          g_assert_cmpuint (get16 (s->p + 0x1a), ==, 0xffff);
          if (!v32)
            g_assert_cmpuint (get16 (s->p + 0x2a), ==, c->ncpus);
          break;

        case 16:
          array_handle = s->handle;
          g_assert_cmpuint (s->p[0x05], ==, 3);     /* system memory */
          if (get32 (s->p + 0x07) == 0x80000000u)
            g_assert_cmpuint (get64 (s->p + 0x0f), ==, ram);
          else
            g_assert_cmpuint ((uint64_t) get32 (s->p + 0x07) << 10, ==, ram & ~0x3ffull);
          ndimms = get16 (s->p + 0x0d);
          break;

        case 17:
          {
            uint16_t size = get16 (s->p + 0x0c);

            g_assert_cmpuint (get16 (s->p + 0x04), ==, array_handle);
            g_assert_nonnull (string_at (s, 0x10));
            g_assert_true (g_str_has_prefix (string_at (s, 0x10), "DIMM "));
            g_assert_cmpuint (size, !=, 0);
            g_assert_cmpuint (size, !=, 0xffff);
            if (size == 0x7fff)
              dimm_total += (uint64_t) get32 (s->p + 0x1c) * MIB;
            else if (size & 0x8000)
              dimm_total += (uint64_t) (size & 0x7fff) << 10;
            else
              dimm_total += (uint64_t) size * MIB;
          }
          break;

        case 19:
          {
            uint64_t start = (uint64_t) get32 (s->p + 0x04) << 10;
            uint64_t end = ((uint64_t) get32 (s->p + 0x08) + 1) << 10;

            if (get32 (s->p + 0x04) == 0xffffffffu)
              {
                start = get64 (s->p + 0x0f);
                end = get64 (s->p + 0x17) + 1;
              }
            g_assert_cmpuint (get16 (s->p + 0x0c), ==, array_handle);
            g_assert_cmpuint (s->p[0x0e], ==, 1);   /* partition width */
            if (nranges == 0)
              {
                g_assert_cmpuint (start, ==, 0);
                g_assert_cmpuint (end, ==, c->ram_low & ~0x3ffull);
              }
            else
              {
                g_assert_cmpuint (start, ==, VR_4GIB);
                g_assert_cmpuint (end, ==, VR_4GIB + c->ram_high);
              }
            nranges++;
          }
          break;

        case 32:
          g_assert_cmpuint (s->p[0x0a], ==, 0);     /* no errors */
          break;

        case 127:
          g_assert_cmpuint (i, ==, all->len - 1);   /* the last one */
          break;

        default:
          g_assert_not_reached ();
        }
    }

  g_assert_cmpuint (counts[0], ==, 1);
  g_assert_cmpuint (counts[1], ==, 1);
  g_assert_cmpuint (counts[3], ==, 1);
  g_assert_cmpuint (counts[4], ==, 1);
  g_assert_cmpuint (counts[16], ==, 1);
  g_assert_cmpuint (counts[17], ==, ndimms);
  g_assert_cmpuint (counts[17], ==, (ram + 16 * GIB - 1) / (16 * GIB));
  g_assert_cmpuint (counts[19], ==, c->ram_high ? 2 : 1);
  g_assert_cmpuint (counts[32], ==, 1);
  g_assert_cmpuint (counts[127], ==, 1);
  /* The memory devices add up to RAM, to the MiB (KiB under 32 MiB). */
  g_assert_cmpuint (dimm_total, <=, ram);
  g_assert_cmpuint (dimm_total, >, ram - (ram < 32 * MIB ? 1024 : MIB));

  smbios_clear (&sm);
}

/*
 * The entry point: signature, length, checksums, version and the table's size, as SeaBIOS
 * (smbios_romfile_setup) wants them: a 24-byte "_SM3_" whose maximum size is the table
 * file's size, or a 31-byte "_SM_" whose length is.
 */
static void
test_entry_point (gconstpointer data)
{
  const Case *c = data;
  g_autoptr (GArray) all = NULL;
  size_t max = 0;
  Smbios sm;

  smbios_build (&sm, c);
  all = walk (sm.data, sm.size);
  for (guint i = 0; i < all->len; i++)
    max = MAX (max, g_array_index (all, Structure, i).size);

  if (c->entry_point == VR_SMBIOS_ENTRY_POINT_64)
    {
      g_assert_cmpuint (sm.ep_size, ==, 24);
      g_assert_cmpmem (sm.ep, 5, "_SM3_", 5);
      g_assert_cmpuint (sm.ep[6], ==, 24);                    /* length */
      g_assert_cmpint (sum (sm.ep, 24), ==, 0);
      g_assert_cmpuint (sm.ep[7], ==, 3);                     /* 3.0 */
      g_assert_cmpuint (sm.ep[8], ==, 0);
      g_assert_cmpuint (sm.ep[10], ==, 1);                    /* entry point revision */
      g_assert_cmpuint (get32 (sm.ep + 12), ==, sm.size);     /* maximum size */
      g_assert_cmpuint (get64 (sm.ep + 16), ==, 0);           /* address: SeaBIOS's */
    }
  else
    {
      g_assert_cmpuint (sm.ep_size, ==, 31);
      g_assert_cmpmem (sm.ep, 4, "_SM_", 4);
      g_assert_cmpuint (sm.ep[5], ==, 31);
      g_assert_cmpint (sum (sm.ep, 31), ==, 0);
      g_assert_cmpint (sum (sm.ep, 16), ==, 0);               /* what SeaBIOS checks */
      g_assert_cmpmem (sm.ep + 16, 5, "_DMI_", 5);
      g_assert_cmpint (sum (sm.ep + 16, 15), ==, 0);
      g_assert_cmpuint (sm.ep[6], ==, 2);                     /* 2.8 */
      g_assert_cmpuint (sm.ep[7], ==, 8);
      g_assert_cmpuint (sm.ep[30], ==, 0x28);
      g_assert_cmpuint (get16 (sm.ep + 8), ==, max);          /* maximum structure size */
      g_assert_cmpuint (get16 (sm.ep + 22), ==, sm.size);     /* table length */
      g_assert_cmpuint (get32 (sm.ep + 24), ==, 0);
      g_assert_cmpuint (get16 (sm.ep + 28), ==, all->len);    /* number of structures */
    }

  smbios_clear (&sm);
}

/* @needle is in dmidecode's @out, or (@present false) is not. */
static void
expect (const char *out, const char *needle, bool present)
{
  if ((strstr (out, needle) != NULL) != present)
    g_error ("dmidecode's output %s \"%s\":\n%s", present ? "lacks" : "has", needle, out);
}

/* dmidecode --from-dump reads the entry point at 0 and the table at 0x20. */
static void
test_dmidecode (gconstpointer data)
{
  const Case *c = data;
  g_autofree char *dmidecode = g_find_program_in_path ("dmidecode");
  g_autoptr (GError) error = NULL;
  g_autoptr (GByteArray) dump = NULL;
  g_autofree char *dir = NULL;
  g_autofree char *path = NULL;
  g_autofree char *out = NULL;
  g_autofree char *err = NULL;
  g_autofree char *cores = NULL;
  int status;
  Smbios sm;

  if (!dmidecode && g_file_test ("/usr/sbin/dmidecode", G_FILE_TEST_IS_EXECUTABLE))
    dmidecode = g_strdup ("/usr/sbin/dmidecode");
  if (!dmidecode)
    {
      g_test_skip ("dmidecode is not installed");
      return;
    }

  smbios_build (&sm, c);
  dump = g_byte_array_new ();
  g_byte_array_append (dump, sm.ep, (guint) sm.ep_size);
  g_byte_array_set_size (dump, 0x20);
  memset (dump->data + sm.ep_size, 0, 0x20 - sm.ep_size);
  /* The table's address, then the checksums again, as SeaBIOS does. */
  if (c->entry_point == VR_SMBIOS_ENTRY_POINT_64)
    {
      dump->data[16] = 0x20;
      dump->data[5] -= sum (dump->data, 24);
    }
  else
    {
      dump->data[24] = 0x20;
      dump->data[21] -= sum (dump->data + 16, 15);
      dump->data[4] -= sum (dump->data, 31);
    }
  g_byte_array_append (dump, sm.data, (guint) sm.size);

  dir = g_dir_make_tmp ("vireo-smbios-XXXXXX", &error);
  g_assert_no_error (error);
  path = g_build_filename (dir, "dmi.bin", NULL);
  g_file_set_contents (path, (const char *) dump->data, dump->len, &error);
  g_assert_no_error (error);

  {
    const char *argv[] = { dmidecode, "--from-dump", path, NULL };
    g_spawn_sync (dir, (char **) argv, NULL, G_SPAWN_DEFAULT, NULL, NULL, &out, &err, &status,
                  &error);
  }
  g_assert_no_error (error);
  if (!g_spawn_check_wait_status (status, NULL) || (err && *err))
    g_error ("dmidecode failed:\n%s\n%s", out, err);
  g_assert_nonnull (out);

  expect (out, c->entry_point == VR_SMBIOS_ENTRY_POINT_64 ? "SMBIOS 3.0.0 present."
                                                          : "SMBIOS 2.8 present.", true);
  expect (out, "System Information\n\tManufacturer: Vireo\n"
               "\tProduct Name: Vireo Virtual Machine\n", true);
  expect (out, "BIOS Information\n\tVendor: Vireo\n\tVersion: Vireo 1.2.3\n", true);
  expect (out, "\tROM Size: 128 kB\n", true);
  expect (out, "End Of Table", true);
  /* Nothing dmidecode found wrong. */
  expect (out, "OUT OF SPEC", false);
  expect (out, "BAD INDEX", false);
  expect (out, "Wrong DMI structures", false);
  expect (out, "Invalid entry length", false);
  expect (out, "runcated", false);
  expect (out, "Unsupported", false);
  cores = g_strdup_printf ("\tCore Count: %u\n", c->ncpus);
  expect (out, cores, true);
  if (c->uuid)
    {
      g_autofree char *upper = g_ascii_strup (c->uuid, -1);
      g_autofree char *lower = g_ascii_strdown (c->uuid, -1);
      g_autofree char *want = g_strdup_printf ("\tUUID: %s\n", lower);
      g_autofree char *want_upper = g_strdup_printf ("\tUUID: %s\n", upper);

      if (!strstr (out, want) && !strstr (out, want_upper))
        g_error ("dmidecode does not show UUID %s:\n%s", c->uuid, out);
    }

  g_unlink (path);
  g_rmdir (dir);
  smbios_clear (&sm);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);

  for (unsigned i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autofree char *p1 = g_strdup_printf ("/smbios/%s/structures", cases[i].name);
      g_autofree char *p2 = g_strdup_printf ("/smbios/%s/entry-point", cases[i].name);
      g_autofree char *p3 = g_strdup_printf ("/smbios/%s/dmidecode", cases[i].name);

      g_test_add_data_func (p1, &cases[i], test_structures);
      g_test_add_data_func (p2, &cases[i], test_entry_point);
      g_test_add_data_func (p3, &cases[i], test_dmidecode);
    }

  return g_test_run ();
}
