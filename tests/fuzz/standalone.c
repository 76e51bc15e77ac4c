/* SPDX-License-Identifier: GPL-3.0-or-later */

/*
 * Runs a libFuzzer target without libFuzzer (gcc builds, the 'fuzz' test suite): every file
 * of the seed corpus, then a fixed number of deterministic mutations of each seed (bit flips,
 * truncations, byte overwrites, random splices). With -Dfuzzing=true and clang the same
 * target is linked against libFuzzer instead.
 */

#include <glib.h>
#include <stdint.h>
#include <string.h>

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

static void
mutate_and_run (GRand *rand, const uint8_t *seed, gsize len, unsigned rounds)
{
  g_autofree uint8_t *buf = g_malloc (len + 64);

  for (unsigned r = 0; r < rounds; r++)
    {
      gsize n = len;

      memcpy (buf, seed, len);
      switch (g_rand_int_range (rand, 0, 4))
        {
        case 0: /* flip some bits */
          for (int i = 0; i < 8 && n > 0; i++)
            buf[g_rand_int_range (rand, 0, (gint32) n)] ^= (uint8_t) (1u << g_rand_int_range (rand, 0, 8));
          break;
        case 1: /* truncate */
          n = n > 0 ? (gsize) g_rand_int_range (rand, 0, (gint32) n) : 0;
          break;
        case 2: /* overwrite a 32-bit word with an interesting value */
          if (n >= 4)
            {
              static const uint32_t values[] = { 0, 1, 0x7fffffff, 0x80000000, 0xffffffff,
                                                 0xfffff000, 0x100000, 0x1000 };
              uint32_t v = values[g_rand_int_range (rand, 0, G_N_ELEMENTS (values))];
              memcpy (buf + g_rand_int_range (rand, 0, (gint32) (n - 3)), &v, 4);
            }
          break;
        default: /* random bytes appended */
          for (int i = 0; i < 64; i++)
            buf[n++] = (uint8_t) g_rand_int (rand);
          break;
        }
      LLVMFuzzerTestOneInput (buf, n);
    }
}

int
main (int argc, char **argv)
{
  g_autoptr (GRand) rand = g_rand_new_with_seed (0x5eed);
  unsigned rounds = 200, files = 0;

  for (int i = 1; i < argc; i++)
    {
      g_autoptr (GDir) dir = NULL;
      const char *name;

      if (g_str_has_prefix (argv[i], "--rounds="))
        {
          rounds = (unsigned) atoi (argv[i] + 9);
          continue;
        }
      dir = g_dir_open (argv[i], 0, NULL);
      if (dir == NULL)
        {
          g_autofree char *data = NULL;
          gsize len;

          if (!g_file_get_contents (argv[i], &data, &len, NULL))
            return 1;
          LLVMFuzzerTestOneInput ((uint8_t *) data, len);
          mutate_and_run (rand, (uint8_t *) data, len, rounds);
          files++;
          continue;
        }
      while ((name = g_dir_read_name (dir)) != NULL)
        {
          g_autofree char *path = g_build_filename (argv[i], name, NULL);
          g_autofree char *data = NULL;
          gsize len;

          if (!g_file_get_contents (path, &data, &len, NULL))
            continue;
          LLVMFuzzerTestOneInput ((uint8_t *) data, len);
          mutate_and_run (rand, (uint8_t *) data, len, rounds);
          files++;
        }
    }
  /* Pure noise too. */
  for (unsigned r = 0; r < rounds; r++)
    {
      uint8_t noise[512];
      gsize n = (gsize) g_rand_int_range (rand, 0, sizeof noise);

      for (gsize i = 0; i < n; i++)
        noise[i] = (uint8_t) g_rand_int (rand);
      LLVMFuzzerTestOneInput (noise, n);
    }
  g_print ("ran %u seed files, %u mutations each\n", files, rounds);
  return 0;
}
