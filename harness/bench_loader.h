/* `trickbench bench --loader`: data-loader throughput. */
#ifndef TB_BENCH_LOADER_H
#define TB_BENCH_LOADER_H

/* Parses argv (as `trickbench bench --loader ...`), runs, returns the exit code. */
int tb_bench_loader(int argc, char **argv);

#endif
