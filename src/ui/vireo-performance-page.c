/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "vireo-performance-page"

#include "config.h"

#include "vireo-performance-page.h"

#include <adwaita.h>
#include <glib/gi18n.h>

#include "vireo-plot.h"

struct _VireoPerformancePage
{
  GtkWidget     parent_instance;

  VireoMachine *machine;
  GSignalGroup *signals;
  guint         timer_id;
  guint         n_samples;
  gint64        last_time;
  guint64       last_counters[4];   /* disk read, disk write, net rx, net tx */
  guint         legend_vcpus;

  GtkLabel     *state_label;
  VireoPlot    *cpu_plot;
  GtkLabel     *cpu_value;
  GtkFlowBox   *cpu_legend;
  VireoPlot    *memory_plot;
  GtkLabel     *memory_value;
  GtkFlowBox   *memory_legend;
  VireoPlot    *disk_plot;
  GtkLabel     *disk_value;
  GtkFlowBox   *disk_legend;
  VireoPlot    *net_plot;
  GtkLabel     *net_value;
  GtkFlowBox   *net_legend;
};

G_DEFINE_FINAL_TYPE (VireoPerformancePage, vireo_performance_page, GTK_TYPE_WIDGET)

enum
{
  PROP_0,
  PROP_MACHINE,
  N_PROPS
};

static GParamSpec *properties[N_PROPS];

static void
set_legend (GtkFlowBox *box, const char *const *names, guint n)
{
  GtkWidget *child;

  while ((child = gtk_widget_get_first_child (GTK_WIDGET (box))) != NULL)
    gtk_flow_box_remove (box, child);
  for (guint i = 0; i < n; i++)
    {
      GdkRGBA c;
      g_autofree char *color = NULL;
      g_autofree char *markup = NULL;
      GtkWidget *label;

      vireo_plot_get_color (i, &c);
      color = g_strdup_printf ("#%02x%02x%02x", (guint) (c.red * 255 + 0.5),
                               (guint) (c.green * 255 + 0.5), (guint) (c.blue * 255 + 0.5));
      markup = g_markup_printf_escaped ("<span foreground=\"%s\">●</span> %s", color, names[i]);
      label = gtk_label_new (NULL);
      gtk_label_set_markup (GTK_LABEL (label), markup);
      gtk_label_set_xalign (GTK_LABEL (label), 0);
      gtk_widget_add_css_class (label, "caption");
      gtk_flow_box_append (box, label);
    }
}

static void
set_cpu_legend (VireoPerformancePage *self, guint n)
{
  g_autoptr(GPtrArray) names = g_ptr_array_new_with_free_func (g_free);

  if (n == self->legend_vcpus)
    return;
  self->legend_vcpus = n;
  for (guint i = 0; i < n; i++)
    /* Translators: a virtual CPU in the performance legend; %u counts from 1 */
    g_ptr_array_add (names, g_strdup_printf (_("vCPU %u"), i + 1));
  set_legend (self->cpu_legend, (const char *const *) names->pdata, n);
  vireo_plot_set_n_series (self->cpu_plot, n);
}

static char *
format_rate (guint64 bytes_per_s)
{
  g_autofree char *size = g_format_size (bytes_per_s);

  /* Translators: a transfer rate; %s is a size such as "1.2 MB" */
  return g_strdup_printf (_("%s/s"), size);
}

static void
update_state (VireoPerformancePage *self)
{
  VireoMachineState state = self->machine ? vireo_machine_get_state (self->machine)
                                          : VIREO_MACHINE_STATE_STOPPED;
  const char *text = NULL;

  switch (state)
    {
    case VIREO_MACHINE_STATE_STOPPED:
      text = self->n_samples > 0 ? _("The machine is off. The plots show its last minute.")
                                 : _("The machine is off. Start it to see what it uses.");
      break;
    case VIREO_MACHINE_STATE_PAUSED:
      text = _("The machine is paused: it uses no processor time.");
      break;
    case VIREO_MACHINE_STATE_BROKEN:
      text = _("This machine’s settings cannot be read, so it cannot run.");
      break;
    case VIREO_MACHINE_STATE_STARTING:
    case VIREO_MACHINE_STATE_RUNNING:
    case VIREO_MACHINE_STATE_STOPPING:
    default:
      text = _("The last 60 seconds, updated every second.");
      break;
    }
  gtk_label_set_label (self->state_label, text);
}

static void
sample (VireoPerformancePage *self)
{
  VireoMachineConfig *config = vireo_machine_get_config (self->machine);
  const double *vcpu;
  guint n_vcpus = 0;
  double cpu_total = 0;
  guint64 mem = vireo_machine_get_memory_usage (self->machine);
  guint64 mem_total = config ? config->memory_mib * 1024 * 1024 : 0;
  guint64 counters[4] = {
    vireo_machine_get_disk_read_bytes (self->machine),
    vireo_machine_get_disk_write_bytes (self->machine),
    vireo_machine_get_net_rx_bytes (self->machine),
    vireo_machine_get_net_tx_bytes (self->machine),
  };
  double rates[4] = { 0, 0, 0, 0 };
  gint64 now = g_get_monotonic_time ();
  double mem_v;
  g_autofree char *text = NULL;

  vcpu = vireo_machine_get_vcpu_usage (self->machine, &n_vcpus);
  if (n_vcpus == 0 && config != NULL)
    n_vcpus = config->cpus;
  set_cpu_legend (self, MIN (n_vcpus, VIREO_PLOT_MAX_SERIES));
  for (guint i = 0; vcpu != NULL && i < n_vcpus; i++)
    cpu_total += vcpu[i];
  vireo_plot_push (self->cpu_plot, vcpu, vcpu ? n_vcpus : 0);
  text = g_strdup_printf (C_("cpu usage", "%.0f %%"), n_vcpus ? cpu_total / n_vcpus : 0.0);
  gtk_label_set_label (self->cpu_value, text);
  g_clear_pointer (&text, g_free);

  mem_v = (double) mem;
  vireo_plot_set_max (self->memory_plot, (double) mem_total);
  vireo_plot_push (self->memory_plot, &mem_v, 1);
  {
    g_autofree char *used = g_format_size_full (mem, G_FORMAT_SIZE_IEC_UNITS);
    g_autofree char *total = g_format_size_full (mem_total, G_FORMAT_SIZE_IEC_UNITS);

    /* Translators: memory in use, e.g. "120 MiB of 1 GiB" */
    text = g_strdup_printf (_("%s of %s"), used, total);
    gtk_label_set_label (self->memory_value, text);
    g_clear_pointer (&text, g_free);
  }

  if (self->last_time != 0 && now > self->last_time)
    {
      double dt = (now - self->last_time) / (double) G_USEC_PER_SEC;

      for (guint i = 0; i < 4; i++)
        rates[i] = counters[i] >= self->last_counters[i]
                     ? (double) (counters[i] - self->last_counters[i]) / dt : 0;
    }
  memcpy (self->last_counters, counters, sizeof counters);
  self->last_time = now;
  vireo_plot_push (self->disk_plot, rates, 2);
  vireo_plot_push (self->net_plot, rates + 2, 2);

  if (config != NULL && config->disks->len == 0)
    gtk_label_set_label (self->disk_value, _("No disks"));
  else
    {
      g_autofree char *r = format_rate ((guint64) rates[0]);
      g_autofree char *w = format_rate ((guint64) rates[1]);

      /* Translators: disk read and write rates */
      text = g_strdup_printf (_("Read %s, write %s"), r, w);
      gtk_label_set_label (self->disk_value, text);
      g_clear_pointer (&text, g_free);
    }
  if (config != NULL && config->nics->len == 0)
    gtk_label_set_label (self->net_value, _("No network cards"));
  else
    {
      g_autofree char *rx = format_rate ((guint64) rates[2]);
      g_autofree char *tx = format_rate ((guint64) rates[3]);

      /* Translators: network receive and send rates */
      text = g_strdup_printf (_("Received %s, sent %s"), rx, tx);
      gtk_label_set_label (self->net_value, text);
      g_clear_pointer (&text, g_free);
    }
  self->n_samples++;
}

static gboolean
timer_cb (gpointer user_data)
{
  VireoPerformancePage *self = user_data;

  if (self->machine != NULL && vireo_machine_is_active (self->machine))
    sample (self);
  return G_SOURCE_CONTINUE;
}

static void
reset_plots (VireoPerformancePage *self)
{
  vireo_plot_clear (self->cpu_plot);
  vireo_plot_clear (self->memory_plot);
  vireo_plot_clear (self->disk_plot);
  vireo_plot_clear (self->net_plot);
  self->n_samples = 0;
  self->last_time = 0;
  memset (self->last_counters, 0, sizeof self->last_counters);
  gtk_label_set_label (self->cpu_value, "");
  gtk_label_set_label (self->memory_value, "");
  gtk_label_set_label (self->disk_value, "");
  gtk_label_set_label (self->net_value, "");
}

static void
state_changed_cb (VireoPerformancePage *self)
{
  VireoMachineState state = vireo_machine_get_state (self->machine);

  if (state == VIREO_MACHINE_STATE_STARTING)
    reset_plots (self);
  if (vireo_machine_is_active (self->machine))
    {
      if (self->timer_id == 0)
        self->timer_id = g_timeout_add_seconds (1, timer_cb, self);
    }
  else
    g_clear_handle_id (&self->timer_id, g_source_remove);
  update_state (self);
}

GtkWidget *
vireo_performance_page_new (void)
{
  return g_object_new (VIREO_TYPE_PERFORMANCE_PAGE, NULL);
}

VireoMachine *
vireo_performance_page_get_machine (VireoPerformancePage *self)
{
  g_return_val_if_fail (VIREO_IS_PERFORMANCE_PAGE (self), NULL);
  return self->machine;
}

guint
vireo_performance_page_get_n_samples (VireoPerformancePage *self)
{
  g_return_val_if_fail (VIREO_IS_PERFORMANCE_PAGE (self), 0);
  return self->n_samples;
}

void
vireo_performance_page_set_machine (VireoPerformancePage *self,
                                    VireoMachine         *machine)
{
  g_return_if_fail (VIREO_IS_PERFORMANCE_PAGE (self));
  g_return_if_fail (machine == NULL || VIREO_IS_MACHINE (machine));

  if (!g_set_object (&self->machine, machine))
    return;
  g_signal_group_set_target (self->signals, machine);
  g_clear_handle_id (&self->timer_id, g_source_remove);
  reset_plots (self);
  if (machine != NULL)
    {
      VireoMachineConfig *config = vireo_machine_get_config (machine);

      set_cpu_legend (self, config ? MIN (config->cpus, VIREO_PLOT_MAX_SERIES) : 1);
      state_changed_cb (self);
    }
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_MACHINE]);
}

static void
vireo_performance_page_dispose (GObject *object)
{
  VireoPerformancePage *self = VIREO_PERFORMANCE_PAGE (object);

  g_clear_handle_id (&self->timer_id, g_source_remove);
  if (self->signals != NULL)
    g_signal_group_set_target (self->signals, NULL);
  g_clear_object (&self->signals);
  g_clear_object (&self->machine);
  gtk_widget_dispose_template (GTK_WIDGET (self), VIREO_TYPE_PERFORMANCE_PAGE);
  {
    GtkWidget *child;

    /* The template's top widget has no id: unparent it ourselves. */
    while ((child = gtk_widget_get_first_child (GTK_WIDGET (self))) != NULL)
      gtk_widget_unparent (child);
  }

  G_OBJECT_CLASS (vireo_performance_page_parent_class)->dispose (object);
}

static void
vireo_performance_page_get_property (GObject    *object,
                                     guint       prop_id,
                                     GValue     *value,
                                     GParamSpec *pspec)
{
  VireoPerformancePage *self = VIREO_PERFORMANCE_PAGE (object);

  switch (prop_id)
    {
    case PROP_MACHINE:
      g_value_set_object (value, self->machine);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
vireo_performance_page_set_property (GObject      *object,
                                     guint         prop_id,
                                     const GValue *value,
                                     GParamSpec   *pspec)
{
  VireoPerformancePage *self = VIREO_PERFORMANCE_PAGE (object);

  switch (prop_id)
    {
    case PROP_MACHINE:
      vireo_performance_page_set_machine (self, g_value_get_object (value));
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
vireo_performance_page_class_init (VireoPerformancePageClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GtkWidgetClass *widget_class = GTK_WIDGET_CLASS (klass);

  object_class->dispose = vireo_performance_page_dispose;
  object_class->get_property = vireo_performance_page_get_property;
  object_class->set_property = vireo_performance_page_set_property;

  properties[PROP_MACHINE] =
    g_param_spec_object ("machine", NULL, NULL, VIREO_TYPE_MACHINE,
                         G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | G_PARAM_EXPLICIT_NOTIFY);
  g_object_class_install_properties (object_class, N_PROPS, properties);

  g_type_ensure (VIREO_TYPE_PLOT);
  gtk_widget_class_set_template_from_resource (widget_class,
                                               "/org/vireo/Vireo/ui/vireo-performance-page.ui");
  gtk_widget_class_bind_template_child (widget_class, VireoPerformancePage, state_label);
#define BIND(x)                                                                          \
  gtk_widget_class_bind_template_child (widget_class, VireoPerformancePage, x##_plot);   \
  gtk_widget_class_bind_template_child (widget_class, VireoPerformancePage, x##_value);  \
  gtk_widget_class_bind_template_child (widget_class, VireoPerformancePage, x##_legend)
  BIND (cpu);
  BIND (memory);
  BIND (disk);
  BIND (net);
#undef BIND
  gtk_widget_class_set_layout_manager_type (widget_class, GTK_TYPE_BIN_LAYOUT);
}

static void
vireo_performance_page_init (VireoPerformancePage *self)
{
  const char *disk_names[] = { C_("disk", "Read"), C_("disk", "Written") };
  const char *net_names[] = { C_("network", "Received"), C_("network", "Sent") };
  const char *mem_names[] = { C_("memory", "In use") };

  gtk_widget_init_template (GTK_WIDGET (self));

  vireo_plot_set_max (self->cpu_plot, 100);
  vireo_plot_set_n_series (self->memory_plot, 1);
  vireo_plot_set_n_series (self->disk_plot, 2);
  vireo_plot_set_n_series (self->net_plot, 2);
  set_legend (self->memory_legend, mem_names, 1);
  set_legend (self->disk_legend, disk_names, 2);
  set_legend (self->net_legend, net_names, 2);
  set_cpu_legend (self, 1);
  update_state (self);

  self->signals = g_signal_group_new (VIREO_TYPE_MACHINE);
  g_signal_group_connect_swapped (self->signals, "notify::state", G_CALLBACK (state_changed_cb),
                                  self);
}
