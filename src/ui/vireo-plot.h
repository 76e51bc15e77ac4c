/* SPDX-License-Identifier: GPL-3.0-or-later */
#pragma once

#include <gtk/gtk.h>

G_BEGIN_DECLS

/*
 * A small line plot of the last VIREO_PLOT_SAMPLES samples of up to VIREO_PLOT_MAX_SERIES
 * series, drawn with cairo: a grid, then each series as a line over a light fill, newest on
 * the right. The vertical scale is fixed (set_max) or follows the data (max 0).
 */

#define VIREO_PLOT_SAMPLES    60
#define VIREO_PLOT_MAX_SERIES 8

#define VIREO_TYPE_PLOT (vireo_plot_get_type ())
G_DECLARE_FINAL_TYPE (VireoPlot, vireo_plot, VIREO, PLOT, GtkWidget)

/* clang-format off */
GtkWidget *vireo_plot_new          (void);
void       vireo_plot_set_n_series (VireoPlot    *self,
                                    guint         n_series);
guint      vireo_plot_get_n_series (VireoPlot    *self);
/* 0: the scale follows the largest value shown. */
void       vireo_plot_set_max      (VireoPlot    *self,
                                    double        max);
/* One sample per series (@n_values may be fewer than the series: the rest get 0). */
void       vireo_plot_push         (VireoPlot    *self,
                                    const double *values,
                                    guint         n_values);
void       vireo_plot_clear        (VireoPlot    *self);
/* The colour of series @i, for legends. */
void       vireo_plot_get_color    (guint         i,
                                    GdkRGBA      *color);
/* clang-format on */

G_END_DECLS
