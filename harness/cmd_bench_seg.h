/* `trickbench bench --task segmentation`: FCN training throughput. */
#ifndef TB_CMD_BENCH_SEG_H
#define TB_CMD_BENCH_SEG_H

/* Parses argv (as `trickbench bench --task segmentation ...`), runs, returns the exit code. */
int tb_bench_segmentation(int argc, char **argv);

#endif
