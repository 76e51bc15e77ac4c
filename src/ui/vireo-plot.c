/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "vireo-plot"

#include "config.h"

#include "vireo-plot.h"

#include <math.h>
#include <string.h>

struct _VireoPlot
{
  GtkWidget parent_instance;

  guint     n_series;
  double    max;
  guint     n_samples;   /* valid samples, the newest at the end */
  double    samples[VIREO_PLOT_MAX_SERIES][VIREO_PLOT_SAMPLES];
};

G_DEFINE_FINAL_TYPE (VireoPlot, vireo_plot, GTK_TYPE_WIDGET)

/* The GNOME palette (blue 3, green 4, orange 3, purple 3, red 3, yellow 4, brown 3, teal). */
static const char *palette[VIREO_PLOT_MAX_SERIES] = {
  "#3584e4", "#2ec27e", "#ff7800", "#9141ac", "#e01b24", "#f5c211", "#986a44", "#1c71d8",
};

void
vireo_plot_get_color (guint    i,
                      GdkRGBA *color)
{
  gdk_rgba_parse (color, palette[i % VIREO_PLOT_MAX_SERIES]);
}

GtkWidget *
vireo_plot_new (void)
{
  return g_object_new (VIREO_TYPE_PLOT, NULL);
}

void
vireo_plot_set_n_series (VireoPlot *self,
                         guint      n_series)
{
  g_return_if_fail (VIREO_IS_PLOT (self));

  n_series = MIN (n_series, VIREO_PLOT_MAX_SERIES);
  if (self->n_series == n_series)
    return;
  self->n_series = n_series;
  gtk_widget_queue_draw (GTK_WIDGET (self));
}

guint
vireo_plot_get_n_series (VireoPlot *self)
{
  g_return_val_if_fail (VIREO_IS_PLOT (self), 0);
  return self->n_series;
}

void
vireo_plot_set_max (VireoPlot *self,
                    double     max)
{
  g_return_if_fail (VIREO_IS_PLOT (self));

  self->max = MAX (max, 0);
  gtk_widget_queue_draw (GTK_WIDGET (self));
}

void
vireo_plot_push (VireoPlot    *self,
                 const double *values,
                 guint         n_values)
{
  g_return_if_fail (VIREO_IS_PLOT (self));

  for (guint s = 0; s < VIREO_PLOT_MAX_SERIES; s++)
    {
      memmove (&self->samples[s][0], &self->samples[s][1],
               (VIREO_PLOT_SAMPLES - 1) * sizeof (double));
      self->samples[s][VIREO_PLOT_SAMPLES - 1] = s < n_values && isfinite (values[s])
                                                   ? MAX (values[s], 0) : 0;
    }
  self->n_samples = MIN (self->n_samples + 1, VIREO_PLOT_SAMPLES);
  gtk_widget_queue_draw (GTK_WIDGET (self));
}

void
vireo_plot_clear (VireoPlot *self)
{
  g_return_if_fail (VIREO_IS_PLOT (self));

  memset (self->samples, 0, sizeof self->samples);
  self->n_samples = 0;
  gtk_widget_queue_draw (GTK_WIDGET (self));
}

/* 1, 2, 5 × 10^n at or above @v. */
static double
nice_ceiling (double v)
{
  double p, m;

  if (v <= 0)
    return 1;
  p = pow (10, floor (log10 (v)));
  m = v / p;
  return (m <= 1 ? 1 : m <= 2 ? 2 : m <= 5 ? 5 : 10) * p;
}

static void
vireo_plot_snapshot (GtkWidget   *widget,
                     GtkSnapshot *snapshot)
{
  VireoPlot *self = VIREO_PLOT (widget);
  int width = gtk_widget_get_width (widget);
  int height = gtk_widget_get_height (widget);
  GdkRGBA fg;
  double max = self->max;
  double step;
  cairo_t *cr;

  if (width <= 2 || height <= 2)
    return;

  if (max <= 0)
    {
      for (guint s = 0; s < self->n_series; s++)
        for (guint i = 0; i < VIREO_PLOT_SAMPLES; i++)
          max = MAX (max, self->samples[s][i]);
      max = nice_ceiling (max);
    }

  G_GNUC_BEGIN_IGNORE_DEPRECATIONS
  gtk_style_context_get_color (gtk_widget_get_style_context (widget), &fg);
  G_GNUC_END_IGNORE_DEPRECATIONS

  cr = gtk_snapshot_append_cairo (snapshot, &GRAPHENE_RECT_INIT (0, 0, width, height));

  /* Grid: four rows, one column every 10 s. */
  cairo_set_line_width (cr, 1);
  cairo_set_source_rgba (cr, fg.red, fg.green, fg.blue, 0.12);
  for (int i = 0; i <= 4; i++)
    {
      double y = floor ((height - 1) * i / 4.0) + 0.5;

      cairo_move_to (cr, 0, y);
      cairo_line_to (cr, width, y);
    }
  for (int i = 0; i <= 6; i++)
    {
      double x = floor ((width - 1) * i / 6.0) + 0.5;

      cairo_move_to (cr, x, 0);
      cairo_line_to (cr, x, height);
    }
  cairo_stroke (cr);

  step = (double) (width - 1) / (VIREO_PLOT_SAMPLES - 1);
  for (guint s = 0; s < self->n_series && self->n_samples > 0; s++)
    {
      guint first = VIREO_PLOT_SAMPLES - self->n_samples;
      GdkRGBA c;

      vireo_plot_get_color (s, &c);
      for (guint i = first; i < VIREO_PLOT_SAMPLES; i++)
        {
          double x = i * step;
          double y = (height - 1) - MIN (self->samples[s][i] / max, 1.0) * (height - 2);

          if (i == first)
            cairo_move_to (cr, x, y);
          else
            cairo_line_to (cr, x, y);
        }
      cairo_set_line_width (cr, 2);
      cairo_set_line_join (cr, CAIRO_LINE_JOIN_ROUND);
      cairo_set_source_rgba (cr, c.red, c.green, c.blue, 1);
      cairo_stroke_preserve (cr);
      if (self->n_series == 1 || s == 0)
        {
          cairo_line_to (cr, (VIREO_PLOT_SAMPLES - 1) * step, height);
          cairo_line_to (cr, first * step, height);
          cairo_close_path (cr);
          cairo_set_source_rgba (cr, c.red, c.green, c.blue, 0.15);
          cairo_fill (cr);
        }
      cairo_new_path (cr);
    }
  cairo_destroy (cr);
}

static void
vireo_plot_measure (GtkWidget      *widget,
                    GtkOrientation  orientation,
                    int             for_size,
                    int            *minimum,
                    int            *natural,
                    int            *minimum_baseline,
                    int            *natural_baseline)
{
  *minimum = orientation == GTK_ORIENTATION_HORIZONTAL ? 120 : 60;
  *natural = orientation == GTK_ORIENTATION_HORIZONTAL ? 360 : 120;
}

static void
vireo_plot_class_init (VireoPlotClass *klass)
{
  GtkWidgetClass *widget_class = GTK_WIDGET_CLASS (klass);

  widget_class->snapshot = vireo_plot_snapshot;
  widget_class->measure = vireo_plot_measure;
  gtk_widget_class_set_css_name (widget_class, "plot");
  gtk_widget_class_set_accessible_role (widget_class, GTK_ACCESSIBLE_ROLE_IMG);
}

static void
vireo_plot_init (VireoPlot *self)
{
  self->n_series = 1;
}
