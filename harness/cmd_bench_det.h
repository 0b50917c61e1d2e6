/* `trickbench bench --task detection`: Faster R-CNN training throughput. */
#ifndef TB_CMD_BENCH_DET_H
#define TB_CMD_BENCH_DET_H

/* Parses argv (as `trickbench bench --task detection ...`), runs, returns the exit code. */
int tb_bench_detection(int argc, char **argv);

#endif
