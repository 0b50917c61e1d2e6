#include "harness/progress.h"

#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#define GREEN "\033[32m"
#define RED "\033[31m"
#define YELLOW "\033[33m"
#define DIM "\033[2m"
#define RESET "\033[0m"

double tb_progress_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

void tb_progress_format_duration(double s, char *buf, size_t size)
{
    if (!isfinite(s) || s < 0) {
        snprintf(buf, size, "?");
        return;
    }
    long t = lround(s < 3.6e8 ? s : 3.6e8); /* at most 100000 hours */
    if (t >= 3600)
        snprintf(buf, size, "%ld:%02ld:%02ld", t / 3600, t / 60 % 60, t % 60);
    else
        snprintf(buf, size, "%ld:%02ld", t / 60, t % 60);
}

void tb_progress_init(tb_progress *p, FILE *out, tb_progress_mode mode, int n_runs, double total_epochs)
{
    memset(p, 0, sizeof *p);
    p->out = out ? out : stderr;
    bool tty = isatty(fileno(p->out));
    if (mode == TB_PROGRESS_AUTO)
        mode = tty ? TB_PROGRESS_LIVE : TB_PROGRESS_LINES;
    p->mode = mode;
    const char *nc = getenv("NO_COLOR");
    p->color = tty && !(nc && *nc);
    p->n_runs = n_runs;
    p->total_epochs = total_epochs;
    p->matrix_start = tb_progress_now();
}

static const char *paint(const tb_progress *p, const char *code) { return p->color ? code : ""; }

static void clear_line(tb_progress *p)
{
    if (p->line_open) {
        fputs("\r\033[K", p->out);
        p->line_open = false;
    }
}

void tb_progress_run_begin(tb_progress *p, int index, const char *label, uint64_t seed, int epochs)
{
    p->index = index;
    snprintf(p->label, sizeof p->label, "%s", label);
    p->seed = seed;
    p->epochs = epochs;
    p->run_start = p->epoch_start = tb_progress_now();
    p->last_draw = 0;
    if (p->mode == TB_PROGRESS_LINES)
        fprintf(p->out, "[%d/%d] %s (seed %llu): started, %d epoch%s\n", index, p->n_runs, label,
                (unsigned long long)seed, epochs, epochs == 1 ? "" : "s");
    fflush(p->out);
}

static int terminal_width(const tb_progress *p)
{
    struct winsize ws;
    if (ioctl(fileno(p->out), TIOCGWINSZ, &ws) == 0 && ws.ws_col > 20)
        return ws.ws_col;
    return 100;
}

void tb_progress_step(tb_progress *p, int epoch, int64_t step, int64_t steps, double loss, double ips)
{
    if (p->mode != TB_PROGRESS_LIVE || steps <= 0)
        return;
    double now = tb_progress_now();
    if (step < steps && now - p->last_draw < 0.1)
        return;
    p->last_draw = now;
    double frac = (double)step / (double)steps;
    double run_done = (epoch - 1 + frac) / (p->epochs > 0 ? p->epochs : 1);
    double elapsed = now - p->run_start;
    double run_eta = run_done > 0 ? elapsed * (1 - run_done) / run_done : NAN;
    /* matrix ETA from the average time per epoch so far, including this one */
    double epochs_done = p->done_epochs + frac;
    double spent = p->train_seconds + (now - p->epoch_start);
    double matrix_eta = epochs_done > 0 ? spent / epochs_done * (p->total_epochs - epochs_done) : NAN;
    char bar[13];
    int fill = (int)(frac * 12);
    for (int i = 0; i < 12; i++)
        bar[i] = i < fill ? '#' : '-';
    bar[12] = '\0';
    char re[32], me[32];
    tb_progress_format_duration(run_eta, re, sizeof re);
    tb_progress_format_duration(matrix_eta, me, sizeof me);
    /* the label gives way on a narrow terminal, the numbers do not */
    char tail[256], label[256];
    snprintf(tail, sizeof tail, " s%llu  epoch %d/%d [%s] %3.0f%%  %.0f img/s  loss %.4f  ETA %s (all %s)",
             (unsigned long long)p->seed, epoch, p->epochs, bar, frac * 100, ips, loss, re, me);
    char prefix[32];
    snprintf(prefix, sizeof prefix, "[%d/%d] ", p->index, p->n_runs);
    int width = terminal_width(p) - 1;
    int room = width - (int)strlen(prefix) - (int)strlen(tail);
    if (room < 8)
        room = 8;
    if ((int)strlen(p->label) > room)
        snprintf(label, sizeof label, "%.*s...", room - 3, p->label);
    else
        snprintf(label, sizeof label, "%s", p->label);
    char line[600];
    snprintf(line, sizeof line, "%s%s%s", prefix, label, tail);
    /* a line longer than the terminal would wrap and break the redraw */
    int cut = width;
    while (cut > 0 && (int)strlen(line) > cut && (line[cut] & 0xC0) == 0x80)
        cut--; /* not inside a UTF-8 character */
    if ((int)strlen(line) > cut)
        line[cut] = '\0';
    fprintf(p->out, "\r\033[K%s", line);
    fflush(p->out);
    p->line_open = true;
}

void tb_progress_epoch(tb_progress *p, const tb_epoch_record *rec)
{
    double now = tb_progress_now();
    p->train_seconds += now - p->epoch_start;
    p->epoch_start = now;
    p->done_epochs += 1;
    if (p->mode != TB_PROGRESS_LINES)
        return;
    char val[96] = "";
    if (rec->evaluated) {
        int n = snprintf(val, sizeof val, ", val top1 %.2f%%", rec->val_top1);
        if (isfinite(rec->val_top5))
            snprintf(val + n, sizeof val - (size_t)n, " top5 %.2f%%", rec->val_top5);
    }
    fprintf(p->out, "[%d/%d] %s (seed %llu) epoch %d/%d: loss %.4f%s, lr %.4g, %.1f s, %.0f img/s\n", p->index,
            p->n_runs, p->label, (unsigned long long)p->seed, rec->epoch, p->epochs, rec->train_loss, val, rec->lr,
            rec->seconds, rec->images_per_sec);
    fflush(p->out);
}

void tb_progress_run_end(tb_progress *p, const char *status, const char *detail)
{
    if (p->mode == TB_PROGRESS_QUIET)
        return;
    clear_line(p);
    const char *c = !strcmp(status, "finished") ? GREEN
                    : !strcmp(status, "failed") ? RED
                    : !strcmp(status, "skipped") ? DIM
                                                 : YELLOW;
    char took[16];
    tb_progress_format_duration(tb_progress_now() - p->run_start, took, sizeof took);
    fprintf(p->out, "[%d/%d] %s (seed %llu): %s%s%s", p->index, p->n_runs, p->label, (unsigned long long)p->seed,
            paint(p, c), status, paint(p, RESET));
    if (strcmp(status, "skipped"))
        fprintf(p->out, " in %s", took);
    fprintf(p->out, "%s%s\n", detail && *detail ? ": " : "", detail ? detail : "");
    fflush(p->out);
}

void tb_progress_note(tb_progress *p, const char *fmt, ...)
{
    if (p->mode == TB_PROGRESS_QUIET)
        return;
    clear_line(p);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(p->out, fmt, ap);
    va_end(ap);
    fputc('\n', p->out);
    fflush(p->out);
}
